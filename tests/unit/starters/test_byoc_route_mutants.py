"""The BYOC route's remaining branches through the public API (``gw.run``, ``gw.live``) against a scripted
orchestrator, pinned for mutation testing (docs/testing.md, "Mutation testing"): JobTokens a hostile
orchestrator may send, balance headers that are not numbers, a refused start whose stop fails, and a token
refresh that loses its connection."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from livepeer.client import (
    APIStatusError,
    ConfigError,
    Gateway,
    LivepeerError,
    NoOrchestratorError,
)
from livepeer.client._proto import lp_rpc_pb2 as pb

from .conftest import PaymentClock, Servers
from .test_byoc_live_start import CAP, CHANNELS, KEY, START, STOP, _job, _orch, _paid, token


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([], "/process/token reply is not a JSON object"),
        ({"available_capacity": -1}, "/process/token has an invalid available_capacity: '-1'"),
        ({"available_capacity": 1.5}, "/process/token has an invalid available_capacity: '1.5'"),
        ({"available_capacity": True}, "/process/token has an invalid available_capacity: 'True'"),
        ({"available_capacity": 2, "balance": -2}, "/process/token has an invalid balance: '-2'"),
        (
            {"available_capacity": 2, "balance": "y" * 60},
            f"/process/token has an invalid balance: {'y' * 40!r}",
        ),
        ({"available_capacity": 2, "price": "cheap"}, "/process/token has an invalid price"),
        (
            {"available_capacity": 2, "price": {"pricePerUnit": -1}},
            "/process/token has an invalid pricePerUnit: '-1'",
        ),
        (
            {"available_capacity": 2, "price": {"pixelsPerUnit": "a"}},
            "/process/token has an invalid pixelsPerUnit: 'a'",
        ),
        (
            {"available_capacity": 2, "ticket_params": "x"},
            "/process/token has invalid ticket_params",
        ),
        (
            {"available_capacity": 2, "service_addr": 5},
            "/process/token has an invalid service_addr",
        ),
    ],
)
def test_a_hostile_job_token_is_a_rejection(servers: Servers, body: object, reason: str) -> None:
    """The token probe runs when a price ceiling is set (and for every live start)."""
    orch = servers.orch()
    orch.routes[("GET", "/process/token")] = lambda req, raw: JSONResponse(body)
    with (
        Gateway(orch_url=[orch.url], max_retries=0, max_price=10) as gw,
        pytest.raises(NoOrchestratorError) as info,
    ):
        gw.run(CAP, input={"text": "x"})
    assert str(info.value) == f"no orchestrator available for {CAP!r}: {orch.url}: {reason}"
    assert orch.paths("POST") == []


def test_valid_token_numbers_are_accepted(servers: Servers) -> None:
    """Zero price, zero balance, integral float prices and a string service address are all fine."""
    orch = servers.orch()
    body = {
        "available_capacity": 1,
        "balance": 0,
        "price": {"pricePerUnit": 0.0, "pixelsPerUnit": 1.0},
        "ticket_params": None,
        "service_addr": orch.url,  # a string on its host: followed (fidelity G7)
    }
    orch.routes[("GET", "/process/token")] = lambda req, raw: JSONResponse(body)
    orch.routes[("POST", "/process/request/")] = lambda req, raw: JSONResponse({"ok": 1})
    # A price ceiling makes the run probe /process/token first.
    with Gateway(orch_url=[orch.url], max_retries=0, max_price=10) as gw:
        assert gw.run(CAP, input={"text": "x"}) == {"ok": 1}
    assert len(orch.requests("GET", "/process/token")) == 1
    (sent,) = orch.requests("POST", "/process/request/")
    assert json.loads(sent.body) == {"text": "x"}
    assert "livepeer-payment" not in sent.headers


@pytest.mark.anyio
async def test_a_start_balance_that_is_not_a_number_is_ignored(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch, gw = _paid(
        servers,
        [token(price=10, balance=100_000, onchain=True)],
        start=lambda req, body: Response(headers={**CHANNELS, "Livepeer-Balance": "lots"}),
        payment=lambda req, body: Response(),
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                # No fresh token: the credit the cycle sees is the start token's (plenty), not 0.
                orch.routes[("GET", "/process/token")] = lambda req, body: JSONResponse(
                    {"error": "down"}, status_code=500
                )
                await payment_clock.cycle(session)
                assert not session.closed
    assert orch.requests("POST", "/ai/stream/payment") == []


@pytest.mark.anyio
async def test_a_refused_start_whose_stop_reply_is_too_large_is_still_a_rejection(
    servers: Servers,
) -> None:
    a = _orch(servers, start=lambda req, body: Response(headers={"X-Control-Url": "/c"}))
    a.routes[("POST", STOP)] = lambda req, body: Response(b"x" * (2 << 20))
    async with Gateway(orch_url=[a.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(CAP, stream_id="st-9"):
                pass
    assert str(info.value) == (
        f"no orchestrator available for {CAP!r}: {a.url}: "
        f"{a.url} started the stream without control and events URLs"
    )
    (stop,) = a.requests("POST", STOP)
    assert _job(stop)["id"] == "st-9"
    assert len(a.requests("POST", START)) == 1


def _aborted(req: Request, body: bytes) -> Response:
    async def broken() -> AsyncIterator[bytes]:
        yield b'{"available_capacity": '
        raise RuntimeError("connection lost")

    return StreamingResponse(broken(), media_type="application/json")


@pytest.mark.anyio
async def test_an_update_whose_token_refresh_fails_uses_the_last_token(servers: Servers) -> None:
    orch, gw = _paid(
        servers, [token(price=10, balance=100_000, onchain=True)], update=lambda r, b: Response()
    )
    async with gw:
        with anyio.fail_after(20):
            async with gw.live(CAP, stream_id="st-r") as session:
                orch.routes[("GET", "/process/token")] = _aborted
                await session.update({"prompt": "p"})
                assert not session.closed
    (update,) = orch.requests("POST", "/ai/stream/update")
    assert update.json() == {"prompt": "p"}
    assert "livepeer-payment" not in update.headers  # the last token's balance still covers it
    assert _job(update)["request"] == '{"stream_id":"st-r"}'


BIG = 3 << 19  # 1.5 MiB: over the 1 MiB every BYOC reply we read whole may have


def test_a_job_token_over_one_mebibyte_is_a_rejection(servers: Servers) -> None:
    orch = servers.orch()
    body = {"available_capacity": 2, "pad": "x" * BIG}
    orch.routes[("GET", "/process/token")] = lambda req, raw: JSONResponse(body)
    gw = Gateway(orch_url=[orch.url], max_retries=0, max_price=10)
    with gw, pytest.raises(NoOrchestratorError) as info:
        gw.run(CAP, input={"text": "x"})
    assert f"is over {1 << 20} bytes" in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("route", ["start", "update"])
async def test_stream_replies_over_one_mebibyte_are_refused(servers: Servers, route: str) -> None:
    orch = _orch(servers)
    huge = Response(b"x" * BIG, headers=CHANNELS if route == "start" else {})
    orch.routes[("POST", f"/ai/stream/{route}")] = lambda req, body: huge
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(LivepeerError) as info:
            async with gw.live(CAP) as session:
                await session.update({"p": 1})
    assert f"is over {1 << 20} bytes" in str(info.value)


@pytest.mark.anyio
async def test_stream_jobs_carry_go_livepeers_70_second_timeout(servers: Servers) -> None:
    orch = _orch(servers)
    orch.routes[("POST", "/ai/stream/update")] = lambda req, body: Response()
    async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                await session.update({"p": 1})
    sent = [s for s in orch.seen if s.path.startswith("/ai/stream/")]
    assert [s.path for s in sent] == [START, "/ai/stream/update", STOP]
    assert [_job(s)["timeout_seconds"] for s in sent] == [70, 70, 70]


def _priced_batch(servers: Servers, reply: bytes) -> Any:
    orch = servers.orch()
    tok = token(price=1, balance=100_000, onchain=True)
    orch.routes[("GET", "/process/token")] = lambda req, raw: JSONResponse(tok)
    orch.routes[("POST", "/process/request/")] = lambda req, raw: Response(reply, status_code=400)
    return orch


def test_insufficient_balance_is_read_from_the_first_500_bytes_only(servers: Servers) -> None:
    orch = _priced_batch(servers, b"x" * 481 + b"Insufficient balance")  # ends at byte 501
    gw = Gateway(orch_url=[orch.url], max_retries=0, private_key=KEY, max_price=10)
    with gw, pytest.raises(APIStatusError) as info:
        gw.run(CAP, input={"text": "x"})
    assert info.value.status_code == 400
    assert (
        len(orch.requests("POST", "/process/request/")) == 1
    )  # not taken for low credit: no repay


def test_job_creds_are_read_from_the_first_300_bytes_only(servers: Servers) -> None:
    orch = _priced_batch(servers, b"x" * 285 + b"verify job creds")  # ends at byte 301
    gw = Gateway(orch_url=[orch.url], max_retries=0, private_key=KEY, max_price=10)
    with gw, pytest.raises(APIStatusError) as info:
        gw.run(CAP, input={"text": "x"})
    assert "private_key=" not in str(info.value)  # no creds hint
    assert len(orch.requests("POST", "/process/request/")) == 1


def test_a_token_without_a_balance_means_no_credit(servers: Servers) -> None:
    """1 wei per 200 s: the re-pay threshold is 0.6 wei, so only a balance of exactly nothing pays."""
    orch = servers.orch()
    tok = token(price=1, onchain=True)
    tok["price"]["pixelsPerUnit"] = 200
    del tok["balance"]
    orch.routes[("GET", "/process/token")] = lambda req, raw: JSONResponse(tok)
    orch.routes[("POST", "/process/request/")] = lambda req, raw: JSONResponse({"ok": 1})
    with Gateway(orch_url=[orch.url], max_retries=0, private_key=KEY, max_price=10) as gw:
        assert gw.run(CAP, input={"text": "x"}) == {"ok": 1}
    (sent,) = orch.requests("POST", "/process/request/")
    assert sent.headers["livepeer-payment"]


# -- batch: prices, headers, credit ----------------------------------------------------------------


def _batch(servers: Servers, tok: dict[str, Any], reply: Any = None) -> Any:
    orch = servers.orch()
    orch.routes[("GET", "/process/token")] = lambda req, raw: JSONResponse(tok)
    orch.routes[("POST", "/process/request/")] = reply or (
        lambda req, raw: JSONResponse({"ok": 1}, headers={"Livepeer-Balance": "99"})
    )
    return orch


def test_the_price_is_per_pixels_per_unit(servers: Servers) -> None:
    """10 wei per 200 units is 0.05 per unit: under a ceiling of 1 (10 or 2000 would not be)."""
    tok = token(price=10, balance=100_000)
    tok["price"]["pixelsPerUnit"] = 200
    orch = _batch(servers, tok)
    with Gateway(orch_url=[orch.url], max_retries=0, max_price=1) as gw:
        assert gw.run(CAP, input={"text": "x"}) == {"ok": 1}


def test_a_price_without_pixels_per_unit_is_per_one_unit(servers: Servers) -> None:
    tok = token(price=10, balance=100_000)
    del tok["price"]["pixelsPerUnit"]
    orch = _batch(servers, tok)
    gw = Gateway(orch_url=[orch.url], max_retries=0, max_price=7)
    with gw, pytest.raises(NoOrchestratorError):
        gw.run(CAP, input={"text": "x"})
    assert orch.paths("POST") == []


def test_a_paid_batch_request_its_headers_job_ledger_and_credit(servers: Servers) -> None:
    tok = token(price=1, onchain=True)
    tok["price"]["pixelsPerUnit"] = 200
    tok["balance"] = 0
    orch = _batch(servers, tok)
    gw = Gateway(orch_url=[orch.url], max_retries=0, private_key=KEY, max_price=10, timeout=20)
    with gw:
        assert gw.run(CAP, input={"text": "x"}) == {"ok": 1}
        entries = gw.spend.entries
        credit = gw.spend.summary().credit
    (sent,) = orch.requests("POST", "/process/request/")
    assert sent.headers["livepeer-capability"] == CAP
    assert sent.headers["x-request-id"]
    assert "accept" not in sent.headers or sent.headers["accept"] != "text/event-stream"
    job = _job(sent)
    assert job["id"] == sent.headers["x-request-id"]
    assert job["timeout_seconds"] == 20
    payment = pb.Payment()
    payment.ParseFromString(base64.b64decode(sent.headers["livepeer-payment"]))
    assert (payment.expected_price.pricePerUnit, payment.expected_price.pixelsPerUnit) == (1, 200)
    assert [(c.orchestrator, c.tickets) for c in entries] == [(orch.url, 1)]
    assert credit == {f"{orch.url} {CAP}": 99.0}


def test_a_paid_token_without_pixels_per_unit_pays_per_one_unit(servers: Servers) -> None:
    tok = token(price=1, onchain=True)
    del tok["price"]["pixelsPerUnit"]
    orch = _batch(servers, tok)
    with Gateway(orch_url=[orch.url], max_retries=0, private_key=KEY, max_price=10) as gw:
        gw.run(CAP, input={"text": "x"})
    (sent,) = orch.requests("POST", "/process/request/")
    payment = pb.Payment()
    payment.ParseFromString(base64.b64decode(sent.headers["livepeer-payment"]))
    assert (payment.expected_price.pricePerUnit, payment.expected_price.pixelsPerUnit) == (1, 1)


def test_a_cheap_priced_onchain_capability_still_needs_the_local_key(servers: Servers) -> None:
    """0.5 wei per unit is priced: refused before any request, naming the capability."""
    tok = token(price=1, onchain=True)
    tok["price"]["pixelsPerUnit"] = 2
    orch = _batch(servers, tok)
    gw = Gateway(orch_url=[orch.url], max_retries=0, max_price=10)
    with gw, pytest.raises(ConfigError, match=repr(CAP)):
        gw.run(CAP, input={"text": "x"})
    assert orch.paths("POST") == []


def test_job_creds_refusal_is_raised_with_the_hint(servers: Servers) -> None:
    orch = _batch(
        servers,
        token(price=1, balance=100_000, onchain=True),
        lambda req, raw: Response(b"Could not verify job creds", status_code=400),
    )
    gw = Gateway(orch_url=[orch.url], max_retries=0, private_key=KEY, max_price=10)
    with gw, pytest.raises(APIStatusError) as info:
        gw.run(CAP, input={"text": "x"})
    (sent,) = orch.requests("POST", "/process/request/")
    assert info.value.status_code == 400
    assert info.value.request_id == sent.headers["x-request-id"]
    assert "pass private_key= or set LIVEPEER_PRIVATE_KEY" in str(info.value)


def test_low_credit_from_a_free_onchain_orchestrator_is_not_repaid(servers: Servers) -> None:
    orch = _batch(
        servers,
        token(price=0, onchain=True),
        lambda req, raw: Response(b"Insufficient balance", status_code=400),
    )
    gw = Gateway(orch_url=[orch.url], max_retries=0, private_key=KEY, max_price=10)
    with gw, pytest.raises(NoOrchestratorError, match="insufficient balance after re-pay"):
        gw.run(CAP, input={"text": "x"})
    assert len(orch.requests("POST", "/process/request/")) == 1


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, "e" * 300, "/process/token answered 500: " + "e" * 200),
        (404, " gone \n", "/process/token answered 404: gone"),
    ],
)
def test_a_failed_token_probe_is_a_rejection(
    servers: Servers, status: int, body: str, reason: str
) -> None:
    orch = servers.orch()
    orch.routes[("GET", "/process/token")] = lambda req, raw: Response(body, status_code=status)
    gw = Gateway(orch_url=[orch.url], max_retries=0, max_price=10)
    with gw, pytest.raises(NoOrchestratorError) as info:
        gw.run(CAP, input={"text": "x"})
    assert str(info.value).endswith(f"{orch.url}: {reason}")
    assert orch.paths("POST") == []


# -- live: what is priced, the refused start's stop ------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tok", "intervals"),
    [
        (token(price=10), []),  # offchain: never paid
        (token(price=0, onchain=True), []),  # free
        ({**token(onchain=True), "price": {"pricePerUnit": 1, "pixelsPerUnit": 2}}, [50.0]),
    ],
)
async def test_only_priced_onchain_streams_are_paid_periodically(
    servers: Servers, payment_clock: PaymentClock, tok: dict[str, Any], intervals: list[float]
) -> None:
    orch = _orch(servers, tokens=[tok])
    async with Gateway(orch_url=[orch.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP):
                pass
    assert payment_clock.intervals == intervals


@pytest.mark.anyio
async def test_a_cheap_onchain_stream_is_repaid_on_402(servers: Servers) -> None:
    statuses = [402]

    def start(req: Request, body: bytes) -> Response:
        if statuses:
            return Response(b"Insufficient balance", status_code=statuses.pop())
        return Response(headers=CHANNELS)

    tok = {**token(onchain=True, balance=100_000), "price": {"pricePerUnit": 1, "pixelsPerUnit": 2}}
    orch = _orch(servers, tokens=[tok], start=start)
    async with Gateway(orch_url=[orch.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20):
            async with gw.live(CAP) as session:
                assert session.orchestrator == orch.url
    first, second = orch.requests("POST", START)
    assert "livepeer-payment" not in first.headers
    assert second.headers["livepeer-payment"]


@pytest.mark.anyio
async def test_the_stop_of_a_refused_priced_start_is_unpaid_with_an_empty_body(
    servers: Servers,
) -> None:
    a = _orch(
        servers,
        tokens=[token(price=10, balance=0, onchain=True)],
        start=lambda req, body: Response(headers={"X-Events-Url": "/e"}),
    )
    async with Gateway(orch_url=[a.url], private_key=KEY, max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError):
            async with gw.live(CAP):
                pass
    (start,) = a.requests("POST", START)
    assert start.headers["livepeer-payment"]
    assert _job(start)["parameters"] == (
        '{"enable_video_ingress":true,"enable_video_egress":true,"enable_data_output":true}'
    )
    (stop,) = a.requests("POST", STOP)
    assert "livepeer-payment" not in stop.headers
    assert json.loads(stop.body) == {}
