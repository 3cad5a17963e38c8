"""Live video-to-video sessions against a scripted orchestrator (gRPC GetOrchestrator + HTTPS routes) and a
scripted signer: what the start request carries, which replies move on to the next orchestrator, what a
refused start closes, and every branch of the payment cycle (480 refresh, 481, 482, refused payments).
Only the public API is used (``Gateway``, ``gw.live``, the session, public errors)."""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from livepeer.client import (
    APIStatusError,
    Gateway,
    NoOrchestratorError,
    PaymentError,
    SignerError,
)
from livepeer.client._proto import lp_rpc_pb2 as pb

from .conftest import LV2V_CAP, PaymentClock, ScriptedOrch, Servers, lv2v_reply

LV2V = "live-video-to-video"


def _orch(servers: Servers, *, price: int = 0, start: Any = None, **kw: Any) -> ScriptedOrch:
    orch = servers.orch(price=price, models={LV2V_CAP: {"noop": 2}}, **kw)
    if start is None:
        orch.routes[("POST", f"/{LV2V}")] = lambda req, body: JSONResponse(lv2v_reply(orch))
    else:
        orch.routes[("POST", f"/{LV2V}")] = start
    return orch


def _segment(header: str) -> Any:
    seg = pb.SegData()
    seg.ParseFromString(base64.b64decode(header))
    return seg


def _info(raw: bytes) -> Any:
    info = pb.OrchestratorInfo()
    info.ParseFromString(raw)
    return info


# -- start ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_offchain_start_request_and_session(servers: Servers) -> None:
    orch = _orch(servers)
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(
                LV2V, model="noop", params={"prompt": "x"}, request_id="req-1", stream_id="st-1"
            ) as session:
                assert session.orchestrator == orch.url
                assert session.manifest_id == "mid-1"
                assert session.stream_id == "st-1"  # added to the reply, which did not carry it
                assert session.start_response["stream_id"] == "st-1"
                assert session.channels.publish_url == f"{orch.url}/ch/pub"
                assert session.channels.subscribe_url == f"{orch.url}/ch/sub"
                assert session.channels.control_url == f"{orch.url}/ch/control"
                assert session.channels.events_url == f"{orch.url}/ch/events"
    (start,) = orch.requests("POST", f"/{LV2V}")
    assert start.json() == {
        "model_id": "noop",
        "params": {"prompt": "x"},
        "gateway_request_id": "req-1",
        "stream_id": "st-1",
    }
    assert start.headers["x-request-id"] == "req-1"
    assert start.headers["livepeer-payment"] == ""
    seg = _segment(start.headers["livepeer-segment"])
    assert seg.manifestId == b"st-1"
    assert seg.auth_token.token == b"tok-1"  # the token of the probe's OrchestratorInfo
    # Leaving without publishing closes the publish channel (how LV2V learns the stream ended).
    assert ("DELETE", "/ch/pub") in [(s.method, s.path) for s in orch.seen]


@pytest.mark.anyio
async def test_default_ids_are_fresh_and_params_default_to_empty(servers: Servers) -> None:
    orch = _orch(servers)
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                stream_id = session.stream_id
    (start,) = orch.requests("POST", f"/{LV2V}")
    body = start.json()
    assert body["params"] == {}
    assert len(body["gateway_request_id"]) == 32
    assert len(body["stream_id"]) == 32
    assert body["gateway_request_id"] != body["stream_id"]
    assert body["stream_id"] == stream_id
    assert start.headers["x-request-id"] == body["gateway_request_id"]


@pytest.mark.anyio
async def test_a_priced_orchestrator_without_signer_gets_the_offchain_segment(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers, price=7)
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop", stream_id="st-2"):
                pass
    (start,) = orch.requests("POST", f"/{LV2V}")
    assert start.headers["livepeer-payment"] == ""
    assert _segment(start.headers["livepeer-segment"]).manifestId == b"st-2"
    assert payment_clock.intervals == []  # no payment loop


@pytest.mark.anyio
async def test_a_free_orchestrator_is_not_paid_even_with_a_signer(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers, price=0)
    signer = servers.signer()
    async with Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop"):
                pass
    assert signer.bodies == []
    (start,) = orch.requests("POST", f"/{LV2V}")
    assert start.headers["livepeer-payment"] == ""
    assert payment_clock.intervals == []


@pytest.mark.anyio
async def test_onchain_start_is_paid_by_the_signer(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers, price=7)
    signer = servers.signer()
    async with Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop", stream_id="st-3"):
                pass
    (body,) = signer.bodies
    assert body["type"] == "lv2v"
    assert body["ManifestID"] == "st-3"
    assert "state" not in body
    assert base64.b64decode(body["orchestrator"]) == orch.info(1)
    (start,) = orch.requests("POST", f"/{LV2V}")
    assert base64.b64decode(start.headers["livepeer-payment"]) == b"pay-1"
    assert base64.b64decode(start.headers["livepeer-segment"]) == b"seg-1"
    assert payment_clock.intervals == [5.0]  # go-livepeer's gateway pays every 5 s


@pytest.mark.anyio
async def test_a_signer_ceiling_481_moves_on_to_the_next_orchestrator(servers: Servers) -> None:
    a = _orch(servers, price=7)
    b = _orch(servers, price=9)
    signer = servers.signer(statuses=[481])
    async with Gateway(orch_url=[a.url, b.url], signer_url=signer.url, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                assert session.orchestrator == b.url  # a is cheaper, so it was tried first
    assert a.requests("POST", f"/{LV2V}") == []
    assert len(b.requests("POST", f"/{LV2V}")) == 1
    assert len(signer.bodies) == 2


@pytest.mark.anyio
async def test_a_signer_ceiling_481_everywhere_is_listed(servers: Servers) -> None:
    a = _orch(servers, price=7)
    signer = servers.signer(statuses=[481])
    async with Gateway(orch_url=[a.url], signer_url=signer.url, max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(LV2V, model="noop"):
                pass
    assert "price above the signer's ceiling (481)" in str(info.value)


@pytest.mark.anyio
async def test_other_signer_failures_at_start_end_the_start(servers: Servers) -> None:
    a = _orch(servers, price=7)
    b = _orch(servers, price=9)
    signer = servers.signer(statuses=[500])
    async with Gateway(orch_url=[a.url, b.url], signer_url=signer.url, max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(SignerError) as info:
            async with gw.live(LV2V, model="noop"):
                pass
    assert info.value.status_code == 500
    assert a.requests("POST", f"/{LV2V}") == []
    assert b.requests("POST", f"/{LV2V}") == []


@pytest.mark.anyio
async def test_leaving_a_session_drops_its_payment_state(servers: Servers) -> None:
    """A new session on the same stream id starts a new signer state chain: the old one was dropped."""
    orch = _orch(servers, price=7)
    signer = servers.signer()
    async with Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=0) as gw:
        for _ in range(2):
            with anyio.fail_after(20):
                async with gw.live(LV2V, model="noop", stream_id="st-same"):
                    pass
    assert len(signer.bodies) == 2
    assert "state" not in signer.bodies[1]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [503, 500, 429])
async def test_retryable_start_statuses_move_on(servers: Servers, status: int) -> None:
    a = _orch(servers, start=lambda req, body: PlainTextResponse("  no room  ", status_code=status))
    b = _orch(servers, price=1)  # ranked after a (no signer: still unpaid)
    async with Gateway(orch_url=[a.url, b.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                assert session.orchestrator == b.url
    only_a = Gateway(orch_url=[a.url], max_retries=0)
    async with only_a:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with only_a.live(LV2V, model="noop"):
                pass
    assert f"HTTP {status}: no room" in str(info.value)


@pytest.mark.anyio
async def test_a_client_error_at_start_is_raised_with_its_status(servers: Servers) -> None:
    a = _orch(servers, start=lambda req, body: PlainTextResponse("bad params", status_code=400))
    b = _orch(servers, price=1)  # ranked after a (no signer: still unpaid)
    async with Gateway(orch_url=[a.url, b.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(APIStatusError) as info:
            async with gw.live(LV2V, model="noop", request_id="req-9"):
                pass
    assert info.value.status_code == 400
    assert info.value.orchestrator == a.url
    assert info.value.request_id == "req-9"
    assert b.requests("POST", f"/{LV2V}") == []


@pytest.mark.anyio
async def test_a_start_that_times_out_moves_on(servers: Servers) -> None:
    slow = anyio.Event()

    async def stall(req: Request, body: bytes) -> Response:
        with anyio.move_on_after(5):
            await slow.wait()
        return JSONResponse({})

    a = _orch(servers, start=stall)
    async with Gateway(orch_url=[a.url], max_retries=0, timeout=1.5) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(LV2V, model="noop"):
                pass
    assert "timed out" in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "closes"),
    [
        ({"control_url": None}, True),  # no control channel: publish closed, next orchestrator
        ({"manifest_id": 5}, True),
        ({"events_url": "https://evil.example/e"}, True),  # a foreign channel
        ({"publish_url": 7}, False),  # no usable publish URL: nothing to close
        ({"publish_url": "https://evil.example/p"}, False),
    ],
)
async def test_a_malformed_start_reply_closes_the_publish_channel_and_moves_on(
    servers: Servers, reply: dict[str, Any], closes: bool
) -> None:
    a = _orch(servers)
    a.routes[("POST", f"/{LV2V}")] = lambda req, body: JSONResponse(lv2v_reply(a, **reply))
    b = _orch(servers, price=1)  # ranked after a (no signer: still unpaid)
    async with Gateway(orch_url=[a.url, b.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                assert session.orchestrator == b.url
    deletes = [s.path for s in a.seen if s.method == "DELETE"]
    assert deletes == (["/ch/pub"] if closes else [])


@pytest.mark.anyio
@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
async def test_a_start_reply_that_is_no_object_is_refused(servers: Servers, body: bytes) -> None:
    a = _orch(servers, start=lambda req, _: Response(body, media_type="application/json"))
    async with Gateway(orch_url=[a.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(LV2V, model="noop"):
                pass
    assert a.url in str(info.value)
    assert [s for s in a.seen if s.method == "DELETE"] == []


@pytest.mark.anyio
async def test_the_start_goes_to_the_transcoder_url(servers: Servers) -> None:
    orch = _orch(servers)
    orch.transcoder = orch.url + "/t/"
    orch.routes[("POST", f"/t/{LV2V}")] = lambda req, body: JSONResponse(lv2v_reply(orch))
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop"):
                pass
    assert orch.paths("POST")[0] == f"/t/{LV2V}"


# -- payments ---------------------------------------------------------------------------------------


def _payment_result(info: bytes | None) -> bytes:
    result = pb.PaymentResult()
    if info is not None:
        result.info.ParseFromString(info)
    return bytes(result.SerializeToString())


async def _paid_session(
    servers: Servers, statuses: list[int], payment: Any = None
) -> tuple[ScriptedOrch, Any, Gateway]:
    orch = _orch(servers, price=7)
    orch.routes[("POST", "/payment")] = payment or (
        lambda req, body: Response(_payment_result(None))
    )
    signer = servers.signer(statuses=statuses)
    gw = Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=0)
    return orch, signer, gw


@pytest.mark.anyio
async def test_payment_cycle_posts_tickets_and_uses_fresh_ticket_params(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    fresh: list[bytes] = []

    def payment(req: Request, body: bytes) -> Response:
        fresh.append(orch_holder[0].info(100 + len(fresh)))
        return Response(_payment_result(fresh[-1]))

    orch_holder: list[ScriptedOrch] = []
    orch, signer, gw = await _paid_session(servers, [], payment)
    orch_holder.append(orch)
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop", stream_id="st-p") as session:
                await payment_clock.cycle(session)
                await payment_clock.cycle(session)
                assert not session.closed
    assert len(signer.bodies) == 3  # start + two cycles
    first = signer.bodies[1]
    # The start is paid under the stream id; every cycle under the orchestrator's manifest_id, the account
    # its session debits (go-livepeer ai_live_video.go:90-96 after ai_mediaserver.go:815-818).
    assert signer.bodies[0]["ManifestID"] == "st-p"
    assert first["ManifestID"] == signer.bodies[2]["ManifestID"] == "mid-1"
    # Every payment names the session's capabilities (live_payment.go:222-241), which /payment prices its
    # answer by; without them the orchestrator answers its transcoding price.
    for body in signer.bodies:
        caps = pb.Capabilities.FromString(base64.b64decode(body["capabilities"]))
        assert dict(caps.capacities) == {35: 1}
        assert list(caps.constraints.PerCapability[35].models) == ["noop"]
    assert first["type"] == "lv2v"
    assert first["state"] == {"State": base64.b64encode(b"s1").decode(), "Sig": "c2ln"}
    assert signer.infos()[1] == orch.info(1)
    assert signer.infos()[2] == fresh[0]  # PaymentResult.info replaced the ticket params
    posts = orch.requests("POST", "/payment")
    assert len(posts) == 2
    assert base64.b64decode(posts[0].headers["livepeer-payment"]) == b"pay-2"
    assert base64.b64decode(posts[0].headers["livepeer-segment"]) == b"seg-2"


@pytest.mark.anyio
async def test_an_empty_or_undecodable_payment_reply_keeps_the_ticket_params(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    replies = [b"", b"\xff\xff\xff", _payment_result(None)]
    orch, signer, gw = await _paid_session(servers, [], lambda req, body: Response(replies.pop(0)))
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                for _ in range(3):
                    await payment_clock.cycle(session)
                assert not session.closed
    assert signer.infos()[1:] == [orch.info(1)] * 3


@pytest.mark.anyio
async def test_a_480_refreshes_the_ticket_params_over_grpc_and_retries(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, signer, gw = await _paid_session(servers, [200, 480, 480])
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                calls = orch.info_calls
                await payment_clock.cycle(session)
                assert not session.closed
    assert orch.info_calls == calls + 2  # one GetOrchestrator per 480
    infos = signer.infos()
    assert infos[1] == orch.info(calls)
    assert infos[2] == orch.info(calls + 1)
    assert infos[3] == orch.info(calls + 2)
    assert signer.bodies[3]["state"] == signer.bodies[1]["state"]  # same chain, same state
    assert len(orch.requests("POST", "/payment")) == 1


@pytest.mark.anyio
async def test_a_480_that_persists_ends_the_session(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, signer, gw = await _paid_session(servers, [200, 480, 480, 480, 480])
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                calls = orch.info_calls
                await payment_clock.cycle(session)
                assert session.closed
                with pytest.raises(PaymentError, match="live payment failed") as info:
                    await session.update({"prompt": "y"})
    assert orch.info_calls == calls + 3  # MAX_REFRESH re-probes, then it gives up
    assert len(signer.bodies) == 5
    assert "480" in str(info.value)
    assert orch.requests("POST", "/payment") == []


@pytest.mark.anyio
async def test_a_481_during_the_session_ends_it(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, _, gw = await _paid_session(servers, [200, 481])
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                await payment_clock.cycle(session)
                with pytest.raises(PaymentError) as info:
                    await session.update({"prompt": "y"})
    assert str(info.value) == f"{orch.url} raised its price above this session's ceiling (481)"


@pytest.mark.anyio
async def test_a_482_skips_the_cycle(servers: Servers, payment_clock: PaymentClock) -> None:
    orch, signer, gw = await _paid_session(servers, [200, 482])
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                await payment_clock.cycle(session)
                assert not session.closed
                await payment_clock.cycle(session)
    assert len(signer.bodies) == 3
    assert len(orch.requests("POST", "/payment")) == 1  # only the cycle after the skip paid


@pytest.mark.anyio
async def test_a_refused_payment_ends_the_session(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, _, gw = await _paid_session(
        servers, [], lambda req, body: PlainTextResponse("  no credit  ", status_code=402)
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                await payment_clock.cycle(session)
                assert session.closed
                with pytest.raises(PaymentError) as info:
                    await session.update({"prompt": "y"})
    assert str(info.value) == f"{orch.url} refused the payment (402): no credit"


@pytest.mark.anyio
async def test_update_is_a_control_message(servers: Servers) -> None:
    orch = _orch(servers)
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                await session.update({"prompt": "z"})
    control = [s for s in orch.seen if s.method == "POST" and s.path.startswith("/ch/control/")]
    messages = [json.loads(line) for s in control for line in s.body.splitlines() if line.strip()]
    assert {"prompt": "z"} in messages


# -- limits, bounds and the signer state per stream ----------------------------------------------------

MIB = 1 << 20  # the reply size cap of the start and payment calls


@pytest.mark.anyio
async def test_a_price_under_one_wei_per_pixel_is_still_paid(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers, price=1, pixels=2)
    signer = servers.signer()
    async with Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop"):
                pass
    assert len(signer.bodies) == 1
    assert payment_clock.intervals == [5.0]


@pytest.mark.anyio
@pytest.mark.parametrize("size", [MIB, MIB + 1])
async def test_the_start_reply_is_read_up_to_one_mib(servers: Servers, size: int) -> None:
    def start(req: Request, body: bytes) -> Response:
        data = json.dumps(lv2v_reply(orch)).encode()
        return Response(data + b" " * (size - len(data)), media_type="application/json")

    orch = _orch(servers, start=start)
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            if size == MIB:
                async with gw.live(LV2V, model="noop") as session:
                    assert session.manifest_id == "mid-1"
            else:
                # LimitError is a ConnectionError: this orchestrator is passed over
                with pytest.raises(NoOrchestratorError, match=f"over {MIB} bytes"):
                    async with gw.live(LV2V, model="noop"):
                        pass


@pytest.mark.anyio
async def test_the_payment_reply_is_read_up_to_one_mib(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    sizes = [MIB, MIB + 1]
    orch, _, gw = await _paid_session(
        servers, [], lambda req, body: Response(b"\x00" * sizes.pop(0))
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                await payment_clock.cycle(session)
                await payment_clock.cycle(session)
                assert session.closed
                with pytest.raises(PaymentError, match=str(MIB)):
                    await session.update({})
    assert len(orch.requests("POST", "/payment")) == 2  # the first cycle's reply was accepted


@pytest.mark.anyio
async def test_a_long_payment_refusal_is_cut_to_200_characters(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, _, gw = await _paid_session(
        servers, [], lambda req, body: PlainTextResponse("x" * 300, status_code=402)
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(LV2V, model="noop") as session:
                await payment_clock.cycle(session)
                with pytest.raises(PaymentError) as info:
                    await session.update({})
    assert str(info.value) == f"{orch.url} refused the payment (402): " + "x" * 200


@pytest.mark.anyio
async def test_a_refused_start_drops_the_stream_s_payment_state(servers: Servers) -> None:
    """The signer state of a stream is per orchestrator and stream id (not model): a start refused after
    payment must not leave it for the next start of that stream there."""

    def start(req: Request, body: bytes) -> Response:
        if json.loads(body)["model_id"] == "a":
            return PlainTextResponse("busy", status_code=503)
        return JSONResponse(lv2v_reply(orch))

    orch = servers.orch(price=7, models={LV2V_CAP: {"a": 2, "b": 2}})
    orch.routes[("POST", f"/{LV2V}")] = start
    signer = servers.signer()
    async with Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=0) as gw:
        with anyio.fail_after(20):
            with pytest.raises(NoOrchestratorError):
                async with gw.live(LV2V, model="a", stream_id="st-x"):
                    pass
            async with gw.live(LV2V, model="b", stream_id="st-x"):
                pass
    assert len(signer.bodies) == 2
    assert "state" not in signer.bodies[1]


@pytest.mark.anyio
async def test_closing_a_refused_start_s_publish_channel_is_bounded_by_the_deadline(
    servers: Servers,
) -> None:
    """The DELETE of a refused start's publish channel waits at most what is left of the call's deadline."""
    release = anyio.Event()

    async def stall(req: Request, body: bytes) -> Response:
        with anyio.move_on_after(15):
            await release.wait()
        return Response()

    orch = _orch(servers)
    orch.routes[("POST", f"/{LV2V}")] = lambda req, body: JSONResponse(
        lv2v_reply(orch, control_url=None)
    )
    orch.routes[("DELETE", "/ch/pub")] = stall
    try:
        async with Gateway(orch_url=[orch.url], max_retries=0, timeout=3.0) as gw:
            started = anyio.current_time()
            with anyio.fail_after(8), pytest.raises(NoOrchestratorError):
                async with gw.live(LV2V, model="noop"):
                    pass
            elapsed = anyio.current_time() - started
    finally:
        release.set()
    assert elapsed >= 2.0  # not cut short: it waited for the rest of the 3 s deadline
    assert len(orch.requests("DELETE", "/ch/pub")) == 1
