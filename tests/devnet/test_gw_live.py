"""Live video-to-video end to end: client LiveSession -> devnet orchestrator (gRPC, payments, trickle) -> noop /
grayscale runner -> back, offchain and on-chain, with signer faults."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import numpy as np
import pytest

from livepeer.client import Gateway, LiveSession
from livepeer.client._errors import NoOrchestratorError, PaymentError, ValidationError
from livepeer.client._routes import ai as lv2v
from livepeer.client._routes import apps as apps_live
from livepeer.client._routes import byoc as byoc_live
from livepeer.devnet._network import DevnetOptions
from livepeer.devnet.pytest_plugin import RunningDevnet

RED = np.zeros((64, 96, 3), np.uint8)
RED[..., 0] = 255


async def eventually(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 - polling observable state; callers bound the wait
        await anyio.sleep(0.05)


@pytest.fixture
def paid_net(
    devnet_factory: Callable[[DevnetOptions], RunningDevnet], monkeypatch: pytest.MonkeyPatch
) -> RunningDevnet:
    """An on-chain devnet (one orchestrator) whose live payment cycles come every 0.2 s, not seconds."""
    for module in (lv2v, byoc_live, apps_live):
        monkeypatch.setattr(module, "PAYMENT_INTERVAL", 0.2)
    return devnet_factory(DevnetOptions(orchestrators=1, onchain=True))


async def round_trip(session: LiveSession, frames_in: int = 30, want: int = 20) -> list[np.ndarray]:
    """Publish red frames while reading output; return the decoded RGB output frames."""
    out: list[np.ndarray] = []
    frames = session.subscribe()

    async def produce() -> None:
        async with session.publish(fps=15) as pub:
            for _ in range(frames_in):
                await pub.write_frame(RED)
                await anyio.sleep(1 / 15)

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        async for frame in frames:
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) >= want:
                break
    return out


@pytest.mark.anyio
@pytest.mark.parametrize(("model", "gray"), [("noop", False), ("grayscale", True)])
async def test_lv2v_offchain_round_trip(devnet: RunningDevnet, model: str, gray: bool) -> None:
    async with Gateway(token=devnet.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-video-to-video", model=model) as session:
                assert session.manifest_id
                assert session.orchestrator in devnet.orchestrators
                assert session.channels.publish_url.startswith(session.orchestrator)
                out = await round_trip(session)
                events = session.events()
                first = await events.__anext__()
    assert len(out) >= 20
    pixel = out[-1][10, 10].astype(int)
    if gray:
        assert abs(pixel[0] - pixel[1]) < 8  # R == G == B after grayscale
        assert 60 < pixel[0] < 95  # luma of pure red is ~76
    else:
        assert pixel[0] > 200  # still red
        assert pixel[1] < 40
    assert first.get("type") == "status"


@pytest.mark.anyio
async def test_model_is_required_before_any_io() -> None:
    gw = Gateway(orch_url="https://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ValidationError, match="needs a model"):
        gw.live("live-video-to-video")
    with pytest.raises(ValidationError, match="params must be a mapping"):
        gw.live("live-grayscale", params=["not", "a", "mapping"])  # type: ignore[arg-type]
    await gw.aclose()


@pytest.mark.anyio
async def test_no_capacity_everywhere_lists_every_rejection(
    devnet_factory: Callable[[DevnetOptions], RunningDevnet],
) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=2))
    for i in range(2):
        net.faults(i).update({"no_capacity": True})
    async with Gateway(token=net.token, max_retries=0) as gw:
        with pytest.raises(NoOrchestratorError) as info:
            async with gw.live("live-video-to-video", model="noop"):
                pass
    assert {r.orchestrator for r in info.value.rejections} == set(net.orchestrators)


@pytest.mark.anyio
async def test_onchain_payments_cycle_and_signer_skips_are_honoured(
    paid_net: RunningDevnet,
) -> None:
    net = paid_net
    async with Gateway(token=net.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-video-to-video", model="noop", stream_id="st-1") as session:
                out = await round_trip(session, frames_in=15, want=5)
                job = session._job
                assert isinstance(job, lv2v.Lv2vJob)
                await eventually(lambda: job.payment_cycles >= 3)
                assert not session.closed
                mid = session.manifest_id
    assert len(out) >= 5
    # The cycles' tickets reach the account the session debits, (sender, its manifest_id): /payment
    # credits the segment credentials' ManifestID (segment_rpc.go:260). Credited to the stream id they
    # would be lost, and the session closed once the 60 s prepayment ran out (ai_http.go:1097-1111).
    accounts = {m for _, m in net.net.orchestrators[0].orch.balances.accounts()}
    assert mid in accounts
    assert "st-1" not in accounts
    # The signer keeps its balance at one ticket's EV (go-livepeer server/segment_rpc.go:779-786): the
    # first cycle after the 60 s prepayment tops up with one ticket, then the credit covers the fee and
    # the signer answers 482 (skipped cycles, nothing posted).
    assert 1 <= job.payments < job.payment_cycles


@pytest.mark.anyio
async def test_onchain_signer_480_refreshes_and_payment_goes_through(
    paid_net: RunningDevnet,
) -> None:
    net = paid_net
    async with Gateway(token=net.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-video-to-video", model="noop") as session:
                job = session._job
                assert isinstance(job, lv2v.Lv2vJob)
                net.signer_faults.update({"storm_status": 480, "storm_count": 2})
                await eventually(lambda: job.payment_cycles >= 3)
                await session.control.write({"prompt": "still alive"})
                assert not session.closed
    assert net.signer_faults.storm_count == 0  # both 480s were consumed and survived


@pytest.mark.anyio
async def test_onchain_signer_481_ends_the_session_with_payment_error(
    paid_net: RunningDevnet,
) -> None:
    net = paid_net
    async with Gateway(token=net.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-video-to-video", model="noop") as session:
                net.signer_faults.update({"storm_status": 481, "storm_count": 1})
                await eventually(lambda: session.closed)
                with pytest.raises(PaymentError, match="481"):
                    await session.control.write({"prompt": "x"})


@pytest.mark.anyio
async def test_byoc_live_stream_round_trip_with_data_update_and_stop(devnet: RunningDevnet) -> None:
    async with Gateway(token=devnet.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-grayscale", params={"strength": 1}) as session:
                assert session.stream_id
                assert session.channels.data_url
                data = session.data()
                out = await round_trip(session, frames_in=45, want=30)
                row = await data.__anext__()
                await session.update({"strength": 0.5})
                job = session._job
                stream_id = session.stream_id
                assert isinstance(job, byoc_live.ByocLiveJob)
                handle = next(h for h in devnet.net.orchestrators if h.url == job.orchestrator)
                assert stream_id in handle.orch.live.sessions  # running while the session is open
    pixel = out[-1][10, 10].astype(int)
    assert abs(pixel[0] - pixel[1]) < 8  # grayscale
    assert row["frame"] == 30
    assert "mean_luma" in row
    assert isinstance(job, byoc_live.ByocLiveJob)
    # /ai/stream/stop removed the stream on the orchestrator that ran it (its channels went with it).
    handle = next(h for h in devnet.net.orchestrators if h.url == job.orchestrator)
    assert stream_id not in handle.orch.live.sessions
    assert not any(name.startswith(stream_id) for name in handle.orch.trickle.channels)


@pytest.mark.anyio
async def test_byoc_live_unknown_capability_is_rejected_by_every_orchestrator(
    devnet: RunningDevnet,
) -> None:
    async with Gateway(token=devnet.token, max_retries=0) as gw:
        with pytest.raises(NoOrchestratorError) as info:
            async with gw.live("no-such-live-capability"):
                pass
    assert len(info.value.rejections) == len(devnet.orchestrators)


@pytest.mark.anyio
async def test_byoc_live_onchain_pays_periodically(paid_net: RunningDevnet) -> None:
    net = paid_net
    # Master orchestrators verify BYOC job signatures that no master signer can make (PROTOCOL §13), so
    # on-chain BYOC signs jobs with a local key: here the signer's own, the sender its tickets name.
    # A master signer has no /sign-byoc-job (it would sign the branch-only V1 layout).
    key = "0x" + net.net.signer.key.private_key.hex()
    net.signer_faults.update({"sign_byoc_job": False})
    async with Gateway(token=net.token, private_key=key) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-grayscale") as session:
                job = session._job
                assert isinstance(job, byoc_live.ByocLiveJob)
                assert job.payment_interval == 0.2
                await eventually(lambda: job.payment_cycles >= 3)
                out = await round_trip(session, frames_in=15, want=5)
                assert not session.closed
    assert len(out) >= 5


def stamp(index: int, size: int = 128) -> np.ndarray:
    """A frame whose 4x4 block grid spells ``index`` in binary: survives H.264, readable on output."""
    frame = np.full((size, size, 3), 64, np.uint8)
    block = size // 4
    for bit in range(16):
        if index >> bit & 1:
            r, c = divmod(bit, 4)
            frame[r * block : (r + 1) * block, c * block : (c + 1) * block] = 255
    return frame


def read_stamp(rgb: np.ndarray) -> int:
    block = rgb.shape[0] // 4
    q = block // 4
    index = 0
    for bit in range(16):
        r, c = divmod(bit, 4)
        if (
            rgb[r * block + q : (r + 1) * block - q, c * block + q : (c + 1) * block - q].mean()
            > 160
        ):
            index |= 1 << bit
    return index


@pytest.mark.anyio
async def test_slow_consumer_jumps_to_the_live_edge_instead_of_buffering(
    devnet: RunningDevnet,
) -> None:
    sent = 0
    async with Gateway(token=devnet.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-video-to-video", model="noop") as session:
                frames = session.subscribe(max_buffered_frames=4)

                async def produce() -> None:
                    nonlocal sent
                    # 0.25 s GOPs: the orchestrator's 5-segment ring holds ~1.25 s of video.
                    async with session.publish(fps=30, gop_seconds=0.25) as pub:
                        for i in range(30 * 6):
                            await pub.write_frame(stamp(i))
                            sent = i
                            await anyio.sleep(1 / 30)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(produce)
                    first = read_stamp((await frames.__anext__()).to_ndarray(format="rgb24"))
                    await anyio.sleep(3.0)  # the consumer stalls for 90 frames' worth of video
                    stalled_at = sent
                    after = [
                        read_stamp(f.to_ndarray(format="rgb24")) async for f in _take(frames, 60)
                    ]
                    tg.cancel_scope.cancel()
    assert first < 30
    assert stalled_at > 80
    # What was already in flight is bounded (current + preconnected segment, a few decoded frames); then
    # the subscriber gets 470 and resumes at the live edge instead of replaying the backlog.
    backlog = next(i for i, idx in enumerate(after) if idx > after[0] + i + 15)
    assert backlog < 60
    assert after[backlog] > stalled_at - 30


async def _take(frames: object, n: int):  # type: ignore[no-untyped-def]
    count = 0
    async for frame in frames:  # type: ignore[attr-defined]
        yield frame
        count += 1
        if count >= n:
            return


def test_examples_live_runs_against_the_devnet(devnet: RunningDevnet) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "live.py"
    proc = subprocess.run(
        [sys.executable, str(example)],
        env={**os.environ, "LIVEPEER_TOKEN": devnet.token},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("session ")
    # grayscale: the red/green/blue bars come back with equal channels
    pixel = next(line for line in lines if line.startswith("first output frame"))
    r, g, b = (int(x.split("=")[1]) for x in pixel.split("(")[1].rstrip(")").split(", "))
    assert abs(r - g) < 10
    assert abs(g - b) < 10
    assert any(line.startswith("received ") for line in lines)
    assert "event: status" in proc.stdout


@pytest.mark.anyio
async def test_module_level_live_uses_the_default_gateway(
    devnet: RunningDevnet, monkeypatch: pytest.MonkeyPatch
) -> None:
    import livepeer.client as lc

    monkeypatch.setenv("LIVEPEER_TOKEN", devnet.token)
    monkeypatch.setattr(lc, "_default", None)
    with anyio.fail_after(60):
        async with lc.live("live-video-to-video", model="noop") as session:
            assert session.orchestrator in devnet.orchestrators
    await lc.default_gateway().aclose()
    monkeypatch.setattr(lc, "_default", None)


async def app_call(url: str, text: str) -> object:
    """Call the app through the orchestrator's session proxy (self-signed TLS, like every orch route)."""
    import httpx

    async with httpx.AsyncClient(verify=False) as client:
        reply = await client.post(url.rstrip("/") + "/", json={"text": text})
        reply.raise_for_status()
        return reply.json()


def app_sessions(net: RunningDevnet) -> int:
    return sum(len(h.orch.apps.sessions) for h in net.net.orchestrators)


@pytest.mark.anyio
async def test_live_runner_app_session_offchain(devnet: RunningDevnet) -> None:
    async with Gateway(token=devnet.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("text-reversal/devnet") as session:
                assert session.app_url
                assert session.app_url.startswith(session.orchestrator)
                assert session.stream_id
                assert app_sessions(devnet) >= 1
                assert await app_call(session.app_url, "live") == {
                    "original": "live",
                    "reversed": "evil",
                }
                job = session._job
                assert isinstance(job, apps_live.AppJob)
                assert job.payment_interval is None  # offchain: nothing to pay
                with pytest.raises(ValidationError, match="no publish channel"):
                    session.publish()
                with pytest.raises(ValidationError, match="app_url"):
                    await session.update({"x": 1})
    assert app_sessions(devnet) == 0  # leaving the block stopped the session


@pytest.mark.anyio
async def test_live_runner_app_session_onchain_402_and_payments(paid_net: RunningDevnet) -> None:
    net = paid_net
    async with Gateway(token=net.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("text-reversal/devnet") as session:
                job = session._job
                assert isinstance(job, apps_live.AppJob)
                assert job.payment_interval == 0.2  # the 402 challenge made it a metered session
                assert await app_call(session.app_url or "", "paid") == {
                    "original": "paid",
                    "reversed": "diap",
                }
                net.signer_faults.update({"storm_status": 480, "storm_count": 1})
                await eventually(lambda: job.payment_cycles >= 4)
                assert not session.closed  # the 480 was refreshed through /refresh-payment
    assert net.signer_faults.storm_count == 0
    assert app_sessions(net) == 0
