"""End to end: livepeer.client's run/stream through the devnet, offchain and on-chain."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from livepeer.client import (
    APIStatusError,
    CapabilityError,
    FileOutput,
    Gateway,
    NoOrchestratorError,
    PaymentError,
)
from livepeer.devnet._network import DevnetOptions


def _onchain_gateway(net: Any, **kw: Any) -> Gateway:
    # Master orchestrators verify a job signature no master signer can produce (PROTOCOL §13), so
    # on-chain BYOC signs jobs locally with the signer's key (the same sender its tickets name).
    key = "0x" + net.net.signer.key.private_key.hex()
    return Gateway(token=net.token, private_key=key, **kw)


def test_run_byoc_offchain(devnet: Any) -> None:
    with Gateway(token=devnet.token) as gw:
        assert gw.run("text-reversal", input={"text": "hello"}) == {
            "original": "hello",
            "reversed": "olleh",
        }
        out = gw.run("sentiment", input={"text": "I love this, great"})
    assert isinstance(out, dict)
    assert out["label"] == "positive"


def test_run_ai_pipeline_offchain_returns_file_output(devnet: Any) -> None:
    with Gateway(token=devnet.token) as gw:
        out = gw.run("text-to-image", input={"prompt": "a cat", "width": 64, "height": 64})
    assert isinstance(out, dict)
    image = out["images"][0]["url"]
    assert isinstance(image, FileOutput)
    assert image.read().startswith(b"\x89PNG")
    assert image.content_type == "image/png"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_run_async_and_stream_async_offchain(devnet: Any, anyio_backend: str) -> None:
    async with Gateway(token=devnet.token) as gw:
        out = await gw.run_async("text-reversal", input={"text": "abc"})
        assert out == {"original": "abc", "reversed": "cba"}
        async with gw.stream_async("token-stream", input={"text": "one two three"}) as s:
            tokens = [ev.json() async for ev in s]
    assert [t["token"] for t in tokens] == ["one", "two", "three"]  # type: ignore[index]


def test_stream_byoc_and_llm_offchain(devnet: Any) -> None:
    with Gateway(token=devnet.token) as gw:
        with gw.stream("token-stream", input={"text": "a b c"}) as s:
            assert [ev.json()["token"] for ev in s] == ["a", "b", "c"]  # type: ignore[index]
        with gw.stream("llm", input={"messages": [{"role": "user", "content": "hi there"}]}) as s:
            chunks = [ev.json() for ev in s]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)  # type: ignore[index]
    assert "hi there" in text


def test_unknown_capability_lists_the_offer(devnet: Any) -> None:
    with Gateway(token=devnet.token) as gw, pytest.raises(CapabilityError) as info:
        gw.run("no-such-capability", input={})
    assert any(name.startswith("text-to-image") for name in info.value.available)


def test_validation_error_is_not_retried(devnet: Any) -> None:
    with Gateway(token=devnet.token) as gw, pytest.raises(APIStatusError) as info:
        gw.run("text-reversal", input={"wrong": 1})
    assert 400 <= info.value.status_code < 500
    assert info.value.orchestrator in devnet.orchestrators


def test_onchain_run_and_stream_pay_through_the_signer(devnet_onchain: Any) -> None:
    net = devnet_onchain
    with _onchain_gateway(net) as gw:
        assert gw.run("text-reversal", input={"text": "paid"}) == {
            "original": "paid",
            "reversed": "diap",
        }
        with gw.stream("token-stream", input={"text": "x y"}) as s:
            assert [ev.json()["token"] for ev in s] == ["x", "y"]  # type: ignore[index]
            balance = s.balance
        assert balance is not None
        assert balance > 0
        out = gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
        assert isinstance(out, dict)
        assert out["images"][0]["url"].read().startswith(b"\x89PNG")
        with gw.stream("llm", input={"messages": [{"role": "user", "content": "paid llm"}]}) as s:
            assert len(list(s)) >= 2


def test_onchain_without_payment_means_is_rejected(devnet_onchain: Any) -> None:
    """No signer, no key: the on-chain orchestrator refuses the unsigned job (4xx, not retried)."""
    gw = Gateway(orch_url=devnet_onchain.orchestrators)
    with gw, pytest.raises((APIStatusError, NoOrchestratorError, PaymentError)) as info:
        gw.run("text-reversal", input={"text": "free?"})
    # Either the BYOC probe is refused, or the live-runner app asks for payment nobody can make.
    assert "signature" in str(info.value) or "payment" in str(info.value)


@pytest.mark.parametrize("onchain", [False, True])
def test_live_runner_app_run_and_stream(devnet_factory: Callable[..., Any], onchain: bool) -> None:
    """``text-reversal/devnet`` is a persistent live-runner app: session, proxied call, stop (402 paid
    through the signer on-chain)."""
    net = devnet_factory(DevnetOptions(onchain=onchain, orchestrators=1))
    with Gateway(token=net.token) as gw:
        assert gw.run("text-reversal/devnet", input={"text": "app"}) == {
            "original": "app",
            "reversed": "ppa",
        }
        # A batch answer to a stream request arrives as one event.
        with gw.stream("text-reversal/devnet", input={"text": "a b"}) as s:
            assert [ev.json() for ev in s] == [{"original": "a b", "reversed": "b a"}]


@pytest.mark.parametrize("onchain", [False, True])
def test_three_orchestrators_one_dead_one_full(
    devnet_factory: Callable[..., Any], onchain: bool
) -> None:
    net = devnet_factory(
        DevnetOptions(onchain=onchain, orchestrators=2, faulty=0, faults={"no_capacity": True})
    )
    # A third orchestrator that is dead: a loopback port nobody listens on.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = f"https://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    orchs = [dead, *net.orchestrators]
    kw: dict[str, Any] = {"orch_url": orchs}
    gw = _onchain_gateway(net, **kw) if onchain else Gateway(token=net.token, **kw)
    with gw:
        assert gw.run("text-reversal", input={"text": "ok"}) == {"original": "ok", "reversed": "ko"}
        with gw.stream("token-stream", input={"text": "s t"}) as s:
            assert [ev.json()["token"] for ev in s] == ["s", "t"]  # type: ignore[index]
            assert s.orchestrator == net.orchestrators[1]
        net.faults(1).no_capacity = True
        gw._dispatch.selector.clear()
        with pytest.raises(NoOrchestratorError) as info:
            gw.run("text-reversal", input={"text": "none left"})
    reasons = {r.orchestrator: r.reason for r in info.value.rejections}
    assert set(reasons) == set(orchs)
    assert "cannot reach" in reasons[dead]


@pytest.mark.slow
@pytest.mark.anyio
async def test_500_concurrent_run_async(devnet: Any) -> None:
    errors: list[BaseException] = []
    results: list[object] = []
    # The devnet shares this process (and its GIL) with the test: allow a generous deadline.
    async with Gateway(token=devnet.token, timeout=180) as gw:

        async def one(i: int) -> None:
            try:
                results.append(await gw.run_async("text-reversal", input={"text": f"n{i}"}))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for i in range(500):
                tg.start_soon(one, i)
    assert errors == []
    assert sorted(r["original"] for r in results) == sorted(f"n{i}" for i in range(500))  # type: ignore[index]


def _established_to(port: int) -> int:
    """Established TCP sockets of this process to 127.0.0.1:port (Linux /proc)."""
    import os
    from pathlib import Path

    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):  # grpcio connects over IPv4-mapped IPv6
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            remote_port = int(parts[2].rsplit(":", 1)[1], 16)
            if parts[3] == "01" and parts[9] in inodes and remote_port == port:
                count += 1
    return count


@pytest.mark.skipif(not __import__("pathlib").Path("/proc/net/tcp").exists(), reason="Linux only")
def test_no_open_connections_after_close(devnet_factory: Callable[..., Any]) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=1))
    port = int(net.orchestrators[0].rsplit(":", 1)[1])
    gw = Gateway(token=net.token)
    gw.run("text-to-image", input={"prompt": "x", "width": 64, "height": 64})  # gRPC + HTTPS
    with gw.stream("token-stream", input={"text": "a b"}) as s:
        next(iter(s))  # left early
    assert _established_to(port) >= 1
    gw.close()
    # gRPC channels close asynchronously in grpcio's own threads: allow them a moment.
    import time

    for _ in range(50):
        if _established_to(port) == 0:
            break
        time.sleep(0.1)
    assert _established_to(port) == 0
