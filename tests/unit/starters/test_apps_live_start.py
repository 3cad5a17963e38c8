"""Persistent live-runner app sessions against a scripted orchestrator (``/discovery``, the runner's session
URL, its 402 challenge, ``/refresh-payment``, ``payment_url``) and a scripted signer. Public API only."""

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
    ValidationError,
)
from livepeer.client._proto import lp_rpc_pb2 as pb

from .conftest import PaymentClock, ScriptedOrch, ScriptedSigner, Servers

APP = "my-app"
SESSION = "/apps/r1/session"
PAYER = "0x" + "Ab" * 20


def _params(n: int) -> bytes:
    info = pb.OrchestratorInfo(transcoder=f"https://127.0.0.1:1/{n}")
    info.price_info.pricePerUnit = 3
    info.price_info.pixelsPerUnit = 1
    info.ticket_params.recipient_rand_hash = n.to_bytes(32, "big")
    return bytes(info.SerializeToString())


def challenge(orch: ScriptedOrch, n: int = 1, status: int = 402) -> Response:
    return JSONResponse(
        {
            "payment_params": base64.b64encode(_params(n)).decode(),
            "manifest_id": f"m-{n}",
            "payment_url": f"{orch.url}/pay",
        },
        status_code=status,
    )


def _orch(
    servers: Servers,
    *,
    price: int | None = 3,
    unit: str = "seconds",
    mode: str = "persistent",
    url: str = SESSION,
    start: Any = None,
) -> ScriptedOrch:
    """An orchestrator listing APP as a runner; its session start asks for payment once unless ``start``."""
    orch = servers.orch()
    runner: dict[str, Any] = {"app": APP, "url": url, "mode": mode, "capacity_available": 1}
    if price is not None:
        runner["price_info"] = {"price": price, "currency": "wei", "unit": unit}

    def discovery(req: Request, body: bytes) -> Response:
        return JSONResponse([{"address": orch.url, "runners": [{**runner, "url": orch.url + url}]}])

    def session(req: Request, body: bytes) -> Response:
        if price and not req.headers.get("livepeer-payment"):
            return challenge(orch)
        return JSONResponse({"session_id": "s1", "app_url": f"{url}/s1/app"})

    orch.routes[("GET", "/process/token")] = lambda req, body: JSONResponse({"balance": 0})
    orch.routes[("GET", "/discovery")] = discovery
    orch.routes[("POST", url.rstrip("/"))] = start or session
    orch.routes[("POST", f"{url.rstrip('/')}/s1/stop")] = lambda req, body: Response(
        status_code=204
    )
    orch.routes[("POST", "/pay")] = lambda req, body: Response()
    return orch


def _gw(orchs: list[ScriptedOrch], signer: ScriptedSigner | None = None) -> Gateway:
    return Gateway(
        orch_url=[o.url for o in orchs], signer_url=signer.url if signer else None, max_retries=0
    )


@pytest.mark.anyio
async def test_a_free_session_starts_and_stops(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers, price=None)
    async with _gw([orch]) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP, request_id="req-1") as session:
                assert session.orchestrator == orch.url
                assert session.stream_id == "s1"
                assert session.app_url == f"{orch.url}{SESSION}/s1/app"
                assert session.start_response == {
                    "stream_id": "s1",
                    "session_id": "s1",
                    "app_url": f"{orch.url}{SESSION}/s1/app",
                }
                assert session.channels.urls() == {}
                with pytest.raises(ValidationError, match=r"session\.app_url"):
                    await session.update({"x": 1})
    (start,) = orch.requests("POST", SESSION)
    assert start.json() == {}
    assert start.headers["x-request-id"] == "req-1"
    assert "livepeer-payer-address" not in start.headers  # no signer, no key: the zero sender
    assert len(orch.requests("POST", f"{SESSION}/s1/stop")) == 1
    assert payment_clock.intervals == []


@pytest.mark.anyio
async def test_the_app_url_defaults_under_the_session_url(servers: Servers) -> None:
    orch = _orch(servers, price=None, start=lambda req, body: JSONResponse({"session_id": "s1"}))
    async with _gw([orch]) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                assert session.app_url == f"{orch.url}{SESSION}/s1/app"


@pytest.mark.anyio
async def test_a_trailing_slash_on_the_runner_url_is_dropped(servers: Servers) -> None:
    orch = _orch(servers, price=None, url=SESSION + "/")
    async with _gw([orch]) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP):
                pass
    assert len(orch.requests("POST", SESSION)) == 1
    assert len(orch.requests("POST", f"{SESSION}/s1/stop")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (b"not json", "returned a malformed session"),
        (b'{"app_url": "/x"}', "returned a malformed session"),  # no session id
        (b'{"session_id": "s1", "app_url": "https://evil.example/app"}', "on another host"),
    ],
)
async def test_a_malformed_session_moves_on_to_the_next_orchestrator(
    servers: Servers, reply: bytes, why: str
) -> None:
    # One failover policy for every start (Dispatcher.select): an orchestrator whose start reply cannot be
    # used is skipped, as for LV2V and BYOC streams, and its reason is listed if nobody else starts it.
    orch = _orch(servers, price=None, start=lambda req, body: Response(reply))
    async with _gw([orch]) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(APP):
                pass
    assert [r.orchestrator for r in info.value.rejections] == [orch.url]
    assert why in info.value.rejections[0].reason


@pytest.mark.anyio
async def test_after_a_malformed_session_the_next_orchestrator_starts_it(servers: Servers) -> None:
    bad = _orch(servers, price=None, start=lambda req, body: Response(b"not json"))
    good = _orch(servers, price=None)
    # Unknown free capacity ranks after known capacity (_selection.rank): `bad` is tried first.
    runner = {"app": APP, "url": good.url + SESSION, "mode": "persistent"}
    good.routes[("GET", "/discovery")] = lambda req, body: JSONResponse(
        [{"address": good.url, "runners": [runner]}]
    )
    async with _gw([bad, good]) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                assert session.orchestrator == good.url
    assert len(bad.requests("POST", SESSION)) == 1
    assert len(good.requests("POST", SESSION)) == 1


@pytest.mark.anyio
async def test_a_single_shot_runner_cannot_hold_a_session(servers: Servers) -> None:
    orch = _orch(servers, price=None, mode="single-shot", url="/apps/r1/app")
    async with _gw([orch]) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(APP):
                pass
    assert "the runner is single-shot; use run() or stream() for it" in str(info.value)
    assert orch.paths("POST") == []


@pytest.mark.anyio
async def test_a_session_url_makes_a_runner_persistent(servers: Servers) -> None:
    orch = _orch(servers, price=None, mode="single-shot")
    async with _gw([orch]) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                assert session.stream_id == "s1"


@pytest.mark.anyio
@pytest.mark.parametrize("status", [503, 500])
async def test_retryable_statuses_move_on(servers: Servers, status: int) -> None:
    a = _orch(
        servers, price=None, start=lambda req, body: PlainTextResponse("x", status_code=status)
    )
    async with _gw([a]) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(APP):
                pass
    assert f"HTTP {status}: x" in str(info.value)


@pytest.mark.anyio
async def test_a_client_error_is_raised(servers: Servers) -> None:
    a = _orch(servers, price=None, start=lambda req, body: PlainTextResponse("x", status_code=404))
    async with _gw([a]) as gw:
        with anyio.fail_after(20), pytest.raises(APIStatusError) as info:
            async with gw.live(APP, request_id="req-2"):
                pass
    assert info.value.status_code == 404
    assert info.value.request_id == "req-2"


@pytest.mark.anyio
async def test_a_session_start_that_times_out_moves_on(servers: Servers) -> None:
    never = anyio.Event()

    async def stall(req: Request, body: bytes) -> Response:
        with anyio.move_on_after(5):
            await never.wait()
        return JSONResponse({"session_id": "s1"})

    a = _orch(servers, price=None, start=stall)
    async with Gateway(orch_url=[a.url], max_retries=0, timeout=1.5) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(APP):
                pass
    assert "timed out" in str(info.value)


# -- paid sessions ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_402_challenge_is_paid_and_the_start_retried(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers, price=3, unit="seconds")
    signer = servers.signer()
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                assert session.stream_id == "s1"
    first, second = orch.requests("POST", SESSION)
    assert first.headers["livepeer-payer-address"] == PAYER
    assert "livepeer-payment" not in first.headers
    assert second.headers["livepeer-payer-address"] == PAYER
    assert base64.b64decode(second.headers["livepeer-payment"]) == b"pay-1"
    assert base64.b64decode(second.headers["livepeer-segment"]) == b"seg-1"
    assert signer.infos() == [_params(1)]
    assert payment_clock.intervals == [3.0]


@pytest.mark.anyio
async def test_a_fixed_price_runner_is_paid_once(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = _orch(servers, price=3, unit="fixed")
    signer = servers.signer()
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP):
                pass
    assert len(signer.bodies) == 1
    assert payment_clock.intervals == []


@pytest.mark.anyio
async def test_a_runner_without_price_info_is_metered(
    servers: Servers, payment_clock: PaymentClock
) -> None:
    orch = servers.orch()
    paid = _orch(servers)  # only for its challenge and routes
    orch.routes.update(paid.routes)
    orch.routes[("GET", "/discovery")] = lambda req, body: JSONResponse(
        [{"address": orch.url, "runners": [{"app": APP, "url": orch.url + SESSION}]}]
    )
    orch.routes[("POST", SESSION)] = lambda req, body: (
        JSONResponse({"session_id": "s1"})
        if req.headers.get("livepeer-payment")
        else challenge(orch)
    )
    signer = servers.signer()
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP):
                pass
    assert payment_clock.intervals == [3.0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"manifest_id": "m", "payment_url": "/pay"},
        {"payment_params": "abc", "manifest_id": "m", "payment_url": "/pay"},  # bad padding
        {"payment_params": "", "payment_url": "/pay"},
        {"payment_params": "", "manifest_id": "m"},
    ],
)
async def test_a_malformed_challenge_is_a_payment_error(
    servers: Servers, body: dict[str, Any]
) -> None:
    orch = _orch(servers, start=lambda req, _: JSONResponse(body, status_code=402))
    signer = servers.signer()
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20), pytest.raises(PaymentError) as info:
            async with gw.live(APP):
                pass
    assert str(info.value) == f"{orch.url} sent a malformed payment challenge"
    assert signer.bodies == []


@pytest.mark.anyio
async def test_a_foreign_payment_url_is_refused_before_paying(servers: Servers) -> None:
    body = {"payment_params": "", "manifest_id": "m", "payment_url": "https://evil.example/pay"}
    orch = _orch(servers, start=lambda req, _: JSONResponse(body, status_code=402))
    signer = servers.signer()
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError, match="another host"):
            async with gw.live(APP):
                pass
    assert signer.bodies == []


@pytest.mark.anyio
async def test_a_challenge_that_is_no_json_is_a_payment_error(servers: Servers) -> None:
    orch = _orch(servers, start=lambda req, _: PlainTextResponse("pay me", status_code=402))
    async with _gw([orch], servers.signer()) as gw:
        with anyio.fail_after(20), pytest.raises(PaymentError, match="malformed payment challenge"):
            async with gw.live(APP):
                pass


@pytest.mark.anyio
async def test_a_second_402_after_paying_is_raised(servers: Servers) -> None:
    orch: ScriptedOrch = _orch(servers, start=lambda req, _: challenge(orch))
    signer = servers.signer()
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20), pytest.raises(APIStatusError) as info:
            async with gw.live(APP):
                pass
    assert info.value.status_code == 402
    assert len(orch.requests("POST", SESSION)) == 2
    assert len(signer.bodies) == 1


@pytest.mark.anyio
async def test_a_signer_ceiling_481_at_start_moves_on(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[481])
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
            async with gw.live(APP):
                pass
    assert "price above the signer's ceiling (481)" in str(info.value)


@pytest.mark.anyio
async def test_other_signer_failures_at_start_are_raised(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[500])
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20), pytest.raises(SignerError) as info:
            async with gw.live(APP):
                pass
    assert info.value.status_code == 500


# -- payment cycles ---------------------------------------------------------------------------------


async def _cycles(
    servers: Servers, statuses: list[int], cycles: int = 1, **routes: Any
) -> tuple[ScriptedOrch, ScriptedSigner, Any]:
    orch = _orch(servers, price=3, unit="seconds")
    for path, handler in routes.items():
        orch.routes[("POST", "/" + path.replace("_", "-"))] = handler
    signer = servers.signer(statuses=[200, *statuses])
    failure: Any = None
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                for _ in range(cycles):
                    await payment_clock_of(servers).cycle(session)
                if session.closed:
                    with pytest.raises(PaymentError) as info:
                        await session.update({})
                    failure = info.value
    return orch, signer, failure


def payment_clock_of(servers: Servers) -> PaymentClock:
    clock: PaymentClock = servers.clock  # type: ignore[attr-defined]
    return clock


@pytest.fixture
def paid(servers: Servers, payment_clock: PaymentClock) -> Servers:
    servers.clock = payment_clock  # type: ignore[attr-defined]
    return servers


@pytest.mark.anyio
async def test_a_cycle_pays_the_payment_url_with_the_challenge_terms(paid: Servers) -> None:
    orch, signer, failure = await _cycles(paid, [], cycles=2)
    assert failure is None
    assert len(signer.bodies) == 3
    body = signer.bodies[1]
    assert body["type"] == "live"  # seconds are billed as "live"
    assert body["app"] == APP
    assert body["ManifestID"] == "m-1"
    assert body["maxPrice"]["unit"] == "seconds"
    assert body["state"] == {"State": base64.b64encode(b"s1").decode(), "Sig": "c2ln"}
    assert signer.infos()[1] == _params(1)
    pays = orch.requests("POST", "/pay")
    assert len(pays) == 2
    assert base64.b64decode(pays[0].headers["livepeer-payment"]) == b"pay-2"
    assert base64.b64decode(pays[0].headers["livepeer-segment"]) == b"seg-2"


@pytest.mark.anyio
async def test_a_482_skips_the_cycle(paid: Servers) -> None:
    orch, signer, failure = await _cycles(paid, [482], cycles=2)
    assert failure is None
    assert len(signer.bodies) == 3
    assert len(orch.requests("POST", "/pay")) == 1


@pytest.mark.anyio
async def test_a_480_fetches_a_fresh_challenge_and_retries(paid: Servers) -> None:
    fresh: list[Any] = []

    def refresh(req: Request, body: bytes) -> Response:
        fresh.append(req)
        return challenge(orch_of[0], n=len(fresh) + 1, status=200)

    orch_of: list[ScriptedOrch] = []
    orch = _orch(paid, price=3)
    orch_of.append(orch)
    orch.routes[("POST", "/refresh-payment")] = refresh
    signer = paid.signer(statuses=[200, 480, 480])
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                await payment_clock_of(paid).cycle(session)
                assert not session.closed
    refreshes = orch.requests("POST", "/refresh-payment")
    assert len(refreshes) == 2
    assert refreshes[0].json() == {"sender": PAYER, "manifest_id": "m-1"}
    assert refreshes[1].json() == {"sender": PAYER, "manifest_id": "m-2"}
    assert signer.infos()[1:] == [_params(1), _params(2), _params(3)]
    assert len(orch.requests("POST", "/pay")) == 1


@pytest.mark.anyio
async def test_a_480_that_persists_ends_the_session(paid: Servers) -> None:
    orch = _orch(paid, price=3)
    orch.routes[("POST", "/refresh-payment")] = lambda req, body: challenge(orch, 2, status=200)
    signer = paid.signer(statuses=[200, 480, 480, 480, 480])
    async with _gw([orch], signer) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                await payment_clock_of(paid).cycle(session)
                with pytest.raises(PaymentError) as info:
                    await session.update({})
    assert len(orch.requests("POST", "/refresh-payment")) == 3
    assert str(info.value).startswith("app session payment failed:")
    assert "480" in str(info.value)


@pytest.mark.anyio
async def test_a_refused_refresh_ends_the_session(paid: Servers) -> None:
    orch, _, failure = await _cycles(
        paid, [480], refresh_payment=lambda req, body: PlainTextResponse("no", status_code=500)
    )
    assert str(failure) == f"{orch.url} refused /refresh-payment (500)"


@pytest.mark.anyio
async def test_other_signer_failures_end_the_session(paid: Servers) -> None:
    orch, _, failure = await _cycles(paid, [481])
    assert str(failure).startswith("app session payment failed:")
    assert orch.requests("POST", "/pay") == []


@pytest.mark.anyio
async def test_a_refused_session_payment_ends_the_session(paid: Servers) -> None:
    orch, _, failure = await _cycles(
        paid, [], pay=lambda req, body: PlainTextResponse("  fixed price  ", status_code=409)
    )
    assert str(failure) == f"{orch.url} refused the session payment (409): fixed price"


@pytest.mark.anyio
async def test_a_failed_stop_is_ignored(servers: Servers) -> None:
    orch = _orch(servers, price=None)
    orch.routes.pop(("POST", f"{SESSION}/s1/stop"))
    async with _gw([orch]) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                pass
    assert session.closed
    assert orch.paths("POST")[-1] == f"{SESSION}/s1/stop"


# -- bounds ---------------------------------------------------------------------------------------------

MIB = 1 << 20  # the reply size cap of the session, refresh and payment calls


def _padded(data: dict[str, Any], size: int, status: int = 200) -> Response:
    raw = json.dumps(data).encode()
    return Response(raw + b" " * (size - len(raw)), status_code=status)


@pytest.mark.anyio
async def test_a_persistent_runner_needs_no_session_path(servers: Servers) -> None:
    orch = _orch(servers, price=None, mode="persistent", url="/apps/r1/open")
    async with _gw([orch]) as gw:
        with anyio.fail_after(20):
            async with gw.live(APP) as session:
                assert session.stream_id == "s1"
    assert len(orch.requests("POST", "/apps/r1/open")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("size", [MIB, MIB + 1])
async def test_the_session_reply_is_read_up_to_one_mib(servers: Servers, size: int) -> None:
    orch = _orch(servers, price=None, start=lambda req, body: _padded({"session_id": "s1"}, size))
    async with _gw([orch]) as gw:
        with anyio.fail_after(20):
            if size == MIB:
                async with gw.live(APP) as session:
                    assert session.stream_id == "s1"
            else:
                with pytest.raises(NoOrchestratorError, match=f"over {MIB} bytes"):
                    async with gw.live(APP):
                        pass


@pytest.mark.anyio
@pytest.mark.parametrize("size", [MIB, MIB + 1])
async def test_the_refreshed_challenge_is_read_up_to_one_mib(paid: Servers, size: int) -> None:
    def refresh(req: Request, body: bytes) -> Response:
        params = base64.b64encode(_params(2)).decode()
        return _padded(
            {"payment_params": params, "manifest_id": "m-2", "payment_url": "/pay"}, size
        )

    orch, _, failure = await _cycles(paid, [480], refresh_payment=refresh)
    if size == MIB:
        assert failure is None
        assert len(orch.requests("POST", "/pay")) == 1
    else:
        assert f"over {MIB} bytes" in str(failure)


@pytest.mark.anyio
async def test_the_payment_reply_is_read_up_to_one_mib(paid: Servers) -> None:
    sizes = [MIB, MIB + 1]
    orch, _, failure = await _cycles(
        paid, [], cycles=2, pay=lambda req, body: Response(b" " * sizes.pop(0))
    )
    assert len(orch.requests("POST", "/pay")) == 2
    assert f"over {MIB} bytes" in str(failure)


@pytest.mark.anyio
async def test_a_long_payment_refusal_is_cut_to_200_characters(paid: Servers) -> None:
    orch, _, failure = await _cycles(
        paid, [], pay=lambda req, body: PlainTextResponse("z" * 300, status_code=409)
    )
    assert str(failure) == f"{orch.url} refused the session payment (409): " + "z" * 200
