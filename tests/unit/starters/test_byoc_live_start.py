"""BYOC live streams against a scripted orchestrator (``/process/token``, ``/ai/stream/*``): the signed start
request, channel URLs from reply headers, refused starts stopped and failed over, the 402 re-pay, and the
payment cycle, updates and stop with fresh tokens and tickets. Public API only."""

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
    ConfigError,
    Gateway,
    LimitError,
    NoOrchestratorError,
    PaymentError,
)

from .conftest import PaymentClock, ScriptedOrch, Servers

CAP = "my-stream"
KEY = "0x" + "11" * 32
START = "/ai/stream/start"
STOP = "/ai/stream/stop"
CHANNELS = {
    "X-Publish-Url": "/ch/pub",
    "X-Subscribe-Url": "/ch/sub",
    "X-Control-Url": "/ch/control",
    "X-Events-Url": "/ch/events",
    "X-Data-Url": "/ch/data",
}


def token(
    *, price: int = 0, balance: int = 0, onchain: bool = False, seq: int = 1, pixels: int = 1
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "price": {"pricePerUnit": price, "pixelsPerUnit": pixels},
        "balance": balance,
        "available_capacity": 2,
    }
    if onchain:
        # EV = 1000 x (2^256-1)/10 / (2^256-1) = 100 wei per ticket.
        tp = {
            "recipient": b"\x02" * 20,
            "face_value": (1000).to_bytes(2, "big"),
            "win_prob": (((1 << 256) - 1) // 10).to_bytes(32, "big"),
            "recipient_rand_hash": seq.to_bytes(32, "big"),
            "seed": b"\x07",
            "expiration_block": (1040).to_bytes(2, "big"),
        }
        body["ticket_params"] = {k: base64.b64encode(v).decode() for k, v in tp.items()} | {
            "expiration_params": {"creation_round": 5}
        }
    return body


def _orch(
    servers: Servers,
    *,
    tokens: list[dict[str, Any]] | None = None,
    start: Any = None,
    **tok: Any,
) -> ScriptedOrch:
    """An orchestrator offering CAP: ``tokens`` are served in order (the last one repeats)."""
    orch = servers.orch()
    queue = list(tokens or [token(**tok)])

    def process_token(req: Request, body: bytes) -> Response:
        return JSONResponse(queue.pop(0) if len(queue) > 1 else queue[0])

    orch.routes[("GET", "/process/token")] = process_token
    orch.routes[("POST", START)] = start or (lambda req, body: Response(headers=CHANNELS))
    orch.routes[("POST", STOP)] = lambda req, body: Response()
    return orch


def _job(seen: Any) -> dict[str, Any]:
    job: dict[str, Any] = json.loads(base64.b64decode(seen.headers["livepeer"]))
    return job


@pytest.mark.anyio
async def test_offchain_start_request_channels_and_stop(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers)
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(
                CAP, params={"a": 1}, request_id="req-1", stream_id="st-1"
            ) as session:
                assert session.orchestrator == orch.url
                assert session.stream_id == "st-1"
                assert session.channels.publish_url == f"{orch.url}/ch/pub"
                assert session.channels.subscribe_url == f"{orch.url}/ch/sub"
                assert session.channels.control_url == f"{orch.url}/ch/control"
                assert session.channels.events_url == f"{orch.url}/ch/events"
                assert session.channels.data_url == f"{orch.url}/ch/data"
                assert session.start_response == {
                    "stream_id": "st-1",
                    "publish_url": f"{orch.url}/ch/pub",
                    "subscribe_url": f"{orch.url}/ch/sub",
                    "control_url": f"{orch.url}/ch/control",
                    "events_url": f"{orch.url}/ch/events",
                    "data_url": f"{orch.url}/ch/data",
                }
    (start,) = orch.requests("POST", START)
    assert start.json() == {"params": {"a": 1}}
    assert start.headers["x-request-id"] == "req-1"
    assert start.headers["livepeer-capability"] == CAP
    assert "livepeer-payment" not in start.headers
    job = _job(start)
    assert job["id"] == "st-1"
    assert job["request"] == "{}"
    # Compact JSON, as go-livepeer's gateway writes it (the orchestrator reads it as a string).
    assert job["parameters"] == (
        '{"enable_video_ingress":true,"enable_video_egress":true,"enable_data_output":true}'
    )
    assert job["capability"] == CAP
    assert job["timeout_seconds"] == 70  # go-livepeer's stream request timeout
    (stop,) = orch.requests("POST", STOP)
    assert stop.json() == {}
    assert _job(stop)["request"] == '{"stream_id":"st-1"}'
    assert _job(stop)["parameters"] == "{}"
    assert "livepeer-payment" not in stop.headers
    assert len(orch.requests("GET", "/process/token")) == 1  # unpriced: no token refresh
    assert payment_clock.intervals == []


@pytest.mark.anyio
async def test_channels_the_reply_leaves_out_are_absent(servers: Servers) -> None:
    only = {"X-Control-Url": "/ch/control", "X-Events-Url": "/ch/events"}
    orch = _orch(servers, start=lambda req, body: Response(headers=only))
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP, stream_id="st-2") as session:
                assert session.channels.publish_url is None
                assert session.channels.data_url is None
                assert session.start_response == {
                    "stream_id": "st-2",
                    "control_url": f"{orch.url}/ch/control",
                    "events_url": f"{orch.url}/ch/events",
                }


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [
        {"X-Events-Url": "/ch/events"},
        {"X-Control-Url": "/ch/control"},
        {"X-Control-Url": "https://evil.example/c", "X-Events-Url": "/ch/events"},
    ],
)
async def test_a_start_without_usable_channels_is_stopped_and_failed_over(
    servers: Servers, headers: dict[str, str]
) -> None:
    a = _orch(servers, start=lambda req, body: Response(headers=headers))
    b = _orch(servers, price=1)  # ranked after a; offchain, so not paid
    async with Gateway(orch_url=[a.url, b.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP, stream_id="st-3") as session:
                assert session.orchestrator == b.url
    (stop,) = a.requests("POST", STOP)
    assert _job(stop)["id"] == "st-3"
    assert _job(stop)["request"] == '{"stream_id":"st-3"}'
    assert stop.json() == {}


@pytest.mark.anyio
async def test_a_refused_start_whose_stop_fails_is_still_a_rejection(servers: Servers) -> None:
    a = _orch(servers, start=lambda req, body: Response(headers={"X-Events-Url": "/e"}))
    a.routes.pop(("POST", STOP))  # 404
    async with Gateway(orch_url=[a.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(CAP):
                pass
    assert "without control and events URLs" in str(info.value)
    assert len(a.requests("POST", STOP)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("status", [503, 500])
async def test_retryable_start_statuses_move_on(servers: Servers, status: int) -> None:
    a = _orch(servers, start=lambda req, body: PlainTextResponse("full", status_code=status))
    b = _orch(servers, price=1)
    async with Gateway(orch_url=[a.url, b.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                assert session.orchestrator == b.url
    assert a.requests("POST", STOP) == []


@pytest.mark.anyio
async def test_a_client_error_at_start_is_raised(servers: Servers) -> None:
    a = _orch(servers, start=lambda req, body: PlainTextResponse("bad", status_code=400))
    async with Gateway(orch_url=[a.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(APIStatusError) as info:
            async with gw.live(CAP, request_id="req-4"):
                pass
    assert info.value.status_code == 400
    assert info.value.orchestrator == a.url
    assert info.value.request_id == "req-4"


@pytest.mark.anyio
async def test_a_start_that_times_out_moves_on(servers: Servers) -> None:
    never = anyio.Event()

    async def stall(req: Request, body: bytes) -> Response:
        with anyio.move_on_after(5):
            await never.wait()
        return Response(headers=CHANNELS)

    a = _orch(servers, start=stall)
    async with Gateway(orch_url=[a.url], max_retries=0, timeout=1.5) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(CAP):
                pass
    assert "timed out" in str(info.value)


@pytest.mark.anyio
async def test_offchain_402_is_not_repaid(servers: Servers) -> None:
    a = _orch(servers, start=lambda req, body: PlainTextResponse("low", status_code=402))
    async with Gateway(orch_url=[a.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(CAP):
                pass
    assert "insufficient balance after re-pay" in str(info.value)
    assert len(a.requests("POST", START)) == 1


# -- on-chain ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_priced_onchain_stream_needs_the_local_key(servers: Servers) -> None:
    a = _orch(servers, price=10, onchain=True)
    async with Gateway(orch_url=[a.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(ConfigError, match=CAP):
            async with gw.live(CAP):
                pass
    assert a.requests("POST", START) == []


@pytest.mark.anyio
async def test_onchain_start_with_low_credit_is_paid_and_signed(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    a = _orch(servers, price=10, balance=0, onchain=True)
    async with Gateway(orch_url=[a.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP):
                pass
    (start,) = a.requests("POST", START)
    assert start.headers["livepeer-payment"]
    assert _job(start)["sender"].lower().startswith("0x")
    assert _job(start)["sig"]
    assert payment_clock.intervals == [50.0]


@pytest.mark.anyio
async def test_a_402_is_repaid_once_then_succeeds(servers: Servers) -> None:
    statuses = [402]

    def start(req: Request, body: bytes) -> Response:
        if statuses:
            return PlainTextResponse("Insufficient balance", status_code=statuses.pop())
        return Response(headers=CHANNELS)

    # Enough credit on the token: the first start is sent without tickets.
    a = _orch(servers, price=10, balance=100_000, onchain=True, start=start)
    async with Gateway(orch_url=[a.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                assert session.orchestrator == a.url
    first, second = a.requests("POST", START)
    assert "livepeer-payment" not in first.headers
    assert second.headers["livepeer-payment"]


@pytest.mark.anyio
async def test_a_second_402_after_the_repay_moves_on(servers: Servers) -> None:
    a = _orch(
        servers,
        price=10,
        balance=100_000,
        onchain=True,
        start=lambda req, body: PlainTextResponse("Insufficient balance", status_code=402),
    )
    async with Gateway(orch_url=[a.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(CAP):
                pass
    assert "insufficient balance after re-pay" in str(info.value)
    assert len(a.requests("POST", START)) == 2


@pytest.mark.anyio
async def test_a_402_from_a_free_onchain_orchestrator_is_not_repaid(servers: Servers) -> None:
    a = _orch(
        servers,
        price=0,
        onchain=True,
        start=lambda req, body: PlainTextResponse("Insufficient balance", status_code=402),
    )
    async with Gateway(orch_url=[a.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError):
            async with gw.live(CAP):
                pass
    assert len(a.requests("POST", START)) == 1


def _paid(
    servers: Servers, tokens: list[dict[str, Any]], **routes: Any
) -> tuple[ScriptedOrch, Gateway]:
    orch = _orch(servers, tokens=tokens)
    for name, handler in routes.items():
        orch.routes[("POST", f"/ai/stream/{name}")] = handler
    return orch, Gateway(orch_url=[orch.url], private_key=KEY, max_retries=0)


LOW = token(price=10, balance=0, onchain=True)
HIGH = token(price=10, balance=100_000, onchain=True)


@pytest.mark.anyio
async def test_payment_cycle_refreshes_the_token_and_pays_when_credit_is_low(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, gw = _paid(servers, [LOW, LOW, HIGH], payment=lambda req, body: Response())
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP, stream_id="st-p") as session:
                await payment_clock.cycle(session)  # token says low: pays
                await payment_clock.cycle(session)  # token says high: no payment
                assert not session.closed
    assert len(orch.requests("GET", "/process/token")) >= 3
    (payment,) = orch.requests("POST", "/ai/stream/payment")
    assert payment.headers["livepeer-payment"]
    assert payment.json() == {}
    assert _job(payment)["request"] == '{"stream_id":"st-p"}'
    assert payment.headers["livepeer-capability"] == CAP


@pytest.mark.anyio
async def test_a_refused_stream_payment_ends_the_session(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, gw = _paid(
        servers, [LOW], payment=lambda req, body: PlainTextResponse(" nope ", status_code=500)
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                await payment_clock.cycle(session)
                assert session.closed
                with pytest.raises(PaymentError) as info:
                    await session.update({"x": 1})
    assert str(info.value) == f"{orch.url} refused the stream payment (500): nope"


@pytest.mark.anyio
async def test_the_start_reply_balance_counts_when_the_token_cannot_be_refreshed(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    """Livepeer-Balance on the start reply is the credit the cycle sees if /process/token fails."""
    orch, gw = _paid(
        servers,
        [LOW],
        start=lambda req, body: Response(headers={**CHANNELS, "Livepeer-Balance": "100000"}),
        payment=lambda req, body: Response(),
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                orch.routes[("GET", "/process/token")] = lambda req, body: PlainTextResponse(
                    "down", status_code=500
                )
                await payment_clock.cycle(session)
                assert not session.closed
    assert orch.requests("POST", "/ai/stream/payment") == []


@pytest.mark.anyio
async def test_a_payment_reply_balance_is_remembered(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, gw = _paid(
        servers,
        [LOW],
        payment=lambda req, body: Response(headers={"Livepeer-Balance": "100000"}),
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                await payment_clock.cycle(session)  # pays; the reply reports plenty of credit
                orch.routes[("GET", "/process/token")] = lambda req, body: PlainTextResponse(
                    "down", status_code=500
                )
                await payment_clock.cycle(session)  # no token: the remembered balance says enough
    assert len(orch.requests("POST", "/ai/stream/payment")) == 1


@pytest.mark.anyio
async def test_unpriced_update_is_a_plain_call(servers: Servers) -> None:
    orch = _orch(servers)
    orch.routes[("POST", "/ai/stream/update")] = lambda req, body: Response()
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP, stream_id="st-u") as session:
                await session.update({"prompt": "p"})
    (update,) = orch.requests("POST", "/ai/stream/update")
    assert update.json() == {"prompt": "p"}
    assert _job(update)["request"] == '{"stream_id":"st-u"}'
    assert "livepeer-payment" not in update.headers
    assert len(orch.requests("GET", "/process/token")) == 1


@pytest.mark.anyio
async def test_a_refused_update_is_raised(servers: Servers) -> None:
    orch = _orch(servers)
    orch.routes[("POST", "/ai/stream/update")] = lambda req, body: PlainTextResponse(
        "no", status_code=404
    )
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                with pytest.raises(APIStatusError) as info:
                    await session.update({"prompt": "p"})
                assert not session.closed
    assert info.value.status_code == 404
    assert info.value.orchestrator == orch.url


@pytest.mark.anyio
async def test_priced_update_pays_when_low_and_again_when_still_low(servers: Servers) -> None:
    replies = [PlainTextResponse("Insufficient balance", status_code=400), Response()]
    orch, gw = _paid(servers, [LOW, HIGH], update=lambda req, body: replies.pop(0))
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                await session.update({"prompt": "p"})  # token now high: sent without tickets
    first, second = orch.requests("POST", "/ai/stream/update")
    assert "livepeer-payment" not in first.headers
    assert second.headers["livepeer-payment"]  # the orchestrator still reported low credit


@pytest.mark.anyio
async def test_priced_update_with_low_credit_carries_tickets(servers: Servers) -> None:
    orch, gw = _paid(servers, [LOW], update=lambda req, body: Response())
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                tokens = len(orch.requests("GET", "/process/token"))
                await session.update({"prompt": "p"})
                assert len(orch.requests("GET", "/process/token")) == tokens + 1
    (update,) = orch.requests("POST", "/ai/stream/update")
    assert update.headers["livepeer-payment"]


@pytest.mark.anyio
async def test_priced_stop_refreshes_and_pays_when_low(servers: Servers) -> None:
    orch, gw = _paid(servers, [LOW])
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP):
                tokens = len(orch.requests("GET", "/process/token"))
    assert len(orch.requests("GET", "/process/token")) == tokens + 1
    (stop,) = orch.requests("POST", STOP)
    assert stop.headers["livepeer-payment"]


# -- bounds ---------------------------------------------------------------------------------------------

MIB = 1 << 20  # the reply size cap of every stream call


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tok", "interval"),
    [
        (token(price=10), []),  # priced but offchain: nothing to pay with
        (token(price=0, onchain=True), []),  # on-chain but free
        (token(price=1, pixels=2, onchain=True), [50.0]),  # half a wei per second is still priced
    ],
)
async def test_only_priced_onchain_streams_are_paid_periodically(
    servers: Servers, payment_clock: PaymentClock, tok: dict[str, Any], interval: list[float]
) -> None:
    orch = _orch(servers, tokens=[tok])
    async with Gateway(orch_url=[orch.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP):
                pass
    assert payment_clock.intervals == interval


@pytest.mark.anyio
async def test_a_402_is_repaid_for_a_price_under_one_wei_per_second(servers: Servers) -> None:
    statuses = [402]

    def start(req: Request, body: bytes) -> Response:
        if statuses:
            return PlainTextResponse("Insufficient balance", status_code=statuses.pop())
        return Response(headers=CHANNELS)

    a = _orch(
        servers, tokens=[token(price=1, pixels=2, balance=100_000, onchain=True)], start=start
    )
    async with Gateway(orch_url=[a.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP):
                pass
    assert len(a.requests("POST", START)) == 2


@pytest.mark.anyio
async def test_a_refused_priced_start_is_stopped_without_tickets(servers: Servers) -> None:
    a = _orch(
        servers,
        tokens=[LOW],
        start=lambda req, body: Response(headers={"X-Events-Url": "/ch/events"}),
    )
    async with Gateway(orch_url=[a.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError):
            async with gw.live(CAP):
                pass
    (start,) = a.requests("POST", START)
    assert start.headers["livepeer-payment"]
    (stop,) = a.requests("POST", STOP)
    assert "livepeer-payment" not in stop.headers


@pytest.mark.anyio
async def test_stopping_a_refused_start_is_bounded_by_the_deadline(servers: Servers) -> None:
    release = anyio.Event()

    async def stall(req: Request, body: bytes) -> Response:
        with anyio.move_on_after(15):
            await release.wait()
        return Response()

    a = _orch(servers, start=lambda req, body: Response(headers={"X-Events-Url": "/ch/events"}))
    a.routes[("POST", STOP)] = stall
    try:
        async with Gateway(orch_url=[a.url], max_retries=0, timeout=3.0) as gw:
            started = anyio.current_time()
            with anyio.fail_after(8), pytest.raises(NoOrchestratorError):
                async with gw.live(CAP):
                    pass
            elapsed = anyio.current_time() - started
    finally:
        release.set()
    assert elapsed >= 2.0  # it waited for the rest of the 3 s deadline, no less
    assert len(a.requests("POST", STOP)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("size", [MIB, MIB + 1])
async def test_the_start_reply_is_read_up_to_one_mib(servers: Servers, size: int) -> None:
    a = _orch(servers, start=lambda req, body: Response(b"x" * size, headers=CHANNELS))
    async with Gateway(orch_url=[a.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            if size == MIB:
                async with gw.live(CAP) as session:
                    assert session.orchestrator == a.url
            else:
                with pytest.raises(NoOrchestratorError, match=f"over {MIB} bytes"):
                    async with gw.live(CAP):
                        pass


@pytest.mark.anyio
async def test_control_replies_are_read_up_to_one_mib(servers: Servers) -> None:
    sizes = [MIB, MIB + 1]
    orch = _orch(servers)
    orch.routes[("POST", "/ai/stream/update")] = lambda req, body: Response(b"x" * sizes.pop(0))
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                await session.update({"n": 1})
                with pytest.raises(LimitError, match=f"over {MIB} bytes"):
                    await session.update({"n": 2})


@pytest.mark.anyio
async def test_a_long_stream_payment_refusal_is_cut_to_200_characters(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, gw = _paid(
        servers, [LOW], payment=lambda req, body: PlainTextResponse("y" * 300, status_code=500)
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                await payment_clock.cycle(session)
                with pytest.raises(PaymentError) as info:
                    await session.update({"x": 1})
    assert str(info.value) == f"{orch.url} refused the stream payment (500): " + "y" * 200
