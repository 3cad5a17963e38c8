"""The BYOC route's remaining branches through the public API (``gw.run``, ``gw.live``) against a scripted
orchestrator, pinned for mutation testing (docs/testing.md, "Mutation testing"): JobTokens a hostile
orchestrator may send, balance headers that are not numbers, a refused start whose stop fails, and a token
refresh that loses its connection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from livepeer.client import APIStatusError, Gateway, LivepeerError, NoOrchestratorError

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
        "service_addr": "https://x",
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
