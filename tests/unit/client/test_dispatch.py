"""The dispatcher's policy through the public API: hints, CapabilityError, retry rounds, signer 480, the
unprobed first try, list_capabilities merging, file outputs and the clients it owns.

Every server is a loopback fake (conftest: ``fake_orchs``, ``fake_signer``, ``dead_url``); counts of the
requests the fakes saw pin how often the dispatcher probes, retries and pays.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import pytest

from livepeer.client import (
    APIStatusError,
    CapabilityError,
    Gateway,
    NoOrchestratorError,
    SignerRefreshError,
    TimeoutError,
)
from livepeer.client import _dispatch as dispatch_mod

Start = Callable[[int], list[Any]]
KEY = "0x" + "4c" * 32


# -- the "nothing answered" hint --------------------------------------------------------------------


def test_hint_names_every_unreachable_candidate(dead_url: str) -> None:
    other = dead_url.replace("127.0.0.1", "127.0.0.2")
    with (
        Gateway(orch_url=[dead_url, other], max_retries=0) as gw,
        pytest.raises(NoOrchestratorError) as info,
    ):
        gw.run("text-reversal", input={"text": "x"})
    hint = info.value.hint
    where = ", ".join(sorted([dead_url, other]))
    assert hint == f"nothing answered at {where}: {dispatch_mod.NOTHING_ANSWERED}"
    assert hint in str(info.value)


def test_no_hint_when_one_candidate_answered(fake_orchs: Start, dead_url: str) -> None:
    (full,) = fake_orchs(1)
    full.capabilities = {}
    with (
        Gateway(orch_url=[dead_url, full.url], max_retries=0) as gw,
        pytest.raises(NoOrchestratorError) as info,
    ):
        gw.run("text-reversal", input={"text": "x"})
    assert info.value.hint == ""
    assert "nothing answered" not in str(info.value)


def test_hint_when_discovery_finds_nothing(dead_url: str) -> None:
    with Gateway(discovery_url=dead_url) as gw:
        with pytest.raises(NoOrchestratorError) as run_info:
            gw.run("text-reversal", input={"text": "x"})
        with pytest.raises(NoOrchestratorError) as list_info:
            gw.list_capabilities()
    for info in (run_info, list_info):
        assert info.value.hint.startswith("nothing answered at ")
        assert info.value.rejections  # the discovery source is listed
    assert list_info.value.capability == "(any)"


def test_unreachable_hint_edge_cases() -> None:
    from livepeer.client._errors import Rejection

    assert dispatch_mod.unreachable_hint([]) == ""
    assert dispatch_mod.unreachable_hint([Rejection("http://a", "no capacity")]) == ""
    mixed = [Rejection("http://a", "connection refused"), Rejection("http://b", "HTTP 500")]
    assert dispatch_mod.unreachable_hint(mixed) == ""
    assert dispatch_mod.unreachable_hint([Rejection("http://a", "Connection refused")]).startswith(
        "nothing answered at http://a: "
    )


# -- CapabilityError ------------------------------------------------------------------------------


def test_capability_error_when_no_orchestrator_offers_the_name(
    fake_orchs: Start, fake_signer: Any
) -> None:
    (orch,) = fake_orchs(1)
    orch.capabilities = {"text-reversal": 2}
    fake_signer.discovery = [{"address": orch.url, "capabilities": ["text-reversal"]}]
    with (
        Gateway(signer_url=fake_signer.url, max_retries=0) as gw,
        pytest.raises(CapabilityError) as info,
    ):
        gw.run("text-reversl", input={"text": "x"})
    assert info.value.capability == "text-reversl"
    assert info.value.available == ("text-reversal",)
    assert info.value.suggestions == ("text-reversal",)
    assert orch.request_calls == 0


def test_a_model_suffixed_offer_is_an_offer(fake_orchs: Start, fake_signer: Any) -> None:
    """``name/model`` in the offer list means ``name`` is offered: the rejections are the answer."""
    (orch,) = fake_orchs(1)
    orch.capabilities = {}
    fake_signer.discovery = [{"address": orch.url, "capabilities": ["my-pipe/model-a"]}]
    with (
        Gateway(signer_url=fake_signer.url, max_retries=0) as gw,
        pytest.raises(NoOrchestratorError) as info,
    ):
        gw.run("my-pipe", input={"text": "x"})
    assert not isinstance(info.value, CapabilityError)
    assert [r.orchestrator for r in info.value.rejections] == [orch.url]


def test_no_capability_error_while_a_candidate_is_unreachable(
    fake_orchs: Start, fake_signer: Any, dead_url: str
) -> None:
    (orch,) = fake_orchs(1)
    fake_signer.discovery = [
        {"address": orch.url, "capabilities": ["text-reversal"]},
        {"address": dead_url, "capabilities": []},
    ]
    with (
        Gateway(signer_url=fake_signer.url, max_retries=0) as gw,
        pytest.raises(NoOrchestratorError) as info,
    ):
        gw.run("text-reversl", input={"text": "x"})
    assert not isinstance(info.value, CapabilityError)
    assert {r.orchestrator for r in info.value.rejections} == {orch.url, dead_url}


def _recording(pauses: list[int]) -> Callable[[int], float]:
    """A ``backoff`` that records which round asked and does not wait."""

    def backoff(n: int) -> float:
        pauses.append(n)
        return 0.0

    return backoff


# -- rounds ---------------------------------------------------------------------------------------


def test_every_candidate_dearer_stops_without_retry_rounds(
    fake_orchs: Start, caplog: pytest.LogCaptureFixture
) -> None:
    (orch,) = fake_orchs(1)
    orch.price = 50
    caplog.set_level(logging.INFO, "livepeer.client")
    with (
        Gateway(orch_url=orch.url, max_price=10, max_retries=3) as gw,
        pytest.raises(NoOrchestratorError) as info,
    ):
        gw.run("text-reversal", input={"text": "x"})
    assert "max_price" in info.value.rejections[0].reason
    assert not [r for r in caplog.records if "retry round" in r.getMessage()]
    assert orch.request_calls == 0


def test_retry_rounds_count_and_backoff(
    fake_orchs: Start, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (orch,) = fake_orchs(1)
    orch.request_status = 503  # every round fails over from it
    pauses: list[int] = []
    monkeypatch.setattr(dispatch_mod, "backoff", _recording(pauses))
    caplog.set_level(logging.INFO, "livepeer.client")
    with Gateway(orch_url=orch.url, max_retries=2) as gw, pytest.raises(NoOrchestratorError):
        gw.run("text-reversal", input={"text": "x"})
    assert pauses == [0, 1]
    rounds = [r.getMessage() for r in caplog.records if "retry round" in r.getMessage()]
    assert [m.split(" in ")[0].split(": ", 1)[1] for m in rounds] == [
        "retry round 1 of 2",
        "retry round 2 of 2",
    ]


@pytest.mark.parametrize(("left", "rounds"), [(0.0, []), (0.5, [0, 1, 2])])
def test_a_spent_deadline_ends_the_rounds(
    fake_orchs: Start, monkeypatch: pytest.MonkeyPatch, left: float, rounds: list[int]
) -> None:
    """After a failed round another starts only while the deadline has time left."""
    (orch,) = fake_orchs(1)
    pauses: list[int] = []
    monkeypatch.setattr(dispatch_mod, "backoff", _recording(pauses))
    from livepeer.client._ops import Deadline

    class Short(Deadline):
        def remaining(self) -> float:
            # The real time for the request itself; `left` once the orchestrator has answered.
            return left if orch.request_calls >= 2 else float(super().remaining())

    with Gateway(orch_url=orch.url, max_retries=3) as gw:
        gw.run("text-reversal", input={"text": "x"})  # stores the probe-free guess
        orch.request_status = 503
        monkeypatch.setattr(dispatch_mod, "Deadline", Short)
        with pytest.raises(NoOrchestratorError) as info:
            gw.run("text-reversal", input={"text": "x"})
    assert pauses == rounds
    assert "503" in info.value.rejections[0].reason


def test_not_tried_reason(dead_url: str) -> None:
    """A candidate no round got to (no probe answer, no attempt) is listed as "not tried"."""
    from livepeer.client._ops import Deadline

    with Gateway(orch_url=[dead_url], max_retries=0) as gw:
        disp = gw._dispatch

        def never(*a: Any) -> Generator[Any, Any, Any]:
            yield from ()
            raise AssertionError("no attempt expected")

        def no_probes(*a: Any, **k: Any) -> Generator[Any, Any, list[Any]]:
            yield from ()
            return []

        disp.selector.probe = no_probes  # type: ignore[method-assign]
        with pytest.raises(NoOrchestratorError) as info:
            disp.run(disp.select("text-reversal", None, never, Deadline(2.0)))
    assert [(r.orchestrator, r.reason) for r in info.value.rejections] == [(dead_url, "not tried")]


# -- signer 480 -----------------------------------------------------------------------------------


class Listing(list[dict[str, Any]]):
    """An orchestrator's runner list that counts the ``/discovery`` reads (the apps route's probe)."""

    reads = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.reads += 1
        return super().__iter__()


def _paid_app(orch: Any, price: int) -> Listing:
    """``paid-app`` as a fixed-price live-runner app: every call pays through the signer."""
    listing = Listing(
        [
            {
                "app": "paid-app",
                "url": "/apps/paid-app/app",
                "mode": "single-shot",
                "capacity_available": 1,
                "price_info": {"price": price, "currency": "wei", "unit": "fixed"},
            }
        ]
    )
    orch.capabilities = {}
    orch.runners = listing
    orch.app_price = price
    return listing


def _paid_calls(orch: Any) -> int:
    return sum(1 for c in orch.app_calls if c["payment"])  # the unpaid ones got the 402 challenge


def test_signer_480_reprobes_then_succeeds(fake_orchs: Start, fake_signer: Any) -> None:
    a, b = fake_orchs(2)
    la, lb = _paid_app(a, 7), _paid_app(b, 8)  # a is cheaper: tried first
    fake_signer.payment_statuses = [480]
    with Gateway(orch_url=[a.url, b.url], signer_url=fake_signer.url) as gw:
        out = gw.run("paid-app", input={"q": 2}, route="app")
    assert out == {"echo": {"q": 2}, "path": "/apps/paid-app/app"}
    assert la.reads == 2  # the probe, and the re-probe after 480
    assert lb.reads == 1
    assert (_paid_calls(a), _paid_calls(b)) == (1, 0)


def test_signer_480_gives_up_after_max_refreshes(fake_orchs: Start, fake_signer: Any) -> None:
    a, b = fake_orchs(2)
    la, _ = _paid_app(a, 7), _paid_app(b, 8)
    fake_signer.payment_statuses = [480] * 10
    gw = Gateway(orch_url=[a.url, b.url], signer_url=fake_signer.url, timeout=2.5)
    with gw, pytest.raises(SignerRefreshError):
        gw.run("paid-app", input={"q": 2}, route="app")
    assert la.reads == 1 + dispatch_mod.MAX_SIGNER_REFRESH
    assert len(fake_signer.payment_bodies) == 1 + dispatch_mod.MAX_SIGNER_REFRESH
    assert (_paid_calls(a), len(b.app_calls)) == (0, 0)  # the error ends the call: b untried


def test_signer_481_moves_on(fake_orchs: Start, fake_signer: Any) -> None:
    a, b = fake_orchs(2)
    la, _ = _paid_app(a, 7), _paid_app(b, 8)
    fake_signer.payment_statuses = [481]
    with Gateway(orch_url=[a.url, b.url], signer_url=fake_signer.url) as gw:
        out = gw.run("paid-app", input={"q": 3}, route="app")
    assert out == {"echo": {"q": 3}, "path": "/apps/paid-app/app"}
    assert la.reads == 1
    assert (_paid_calls(a), _paid_calls(b)) == (0, 1)


def test_connection_error_at_the_deadline_is_a_timeout(
    fake_orchs: Start, monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    from livepeer.client._errors import ConnectionError as LpConnectionError
    from livepeer.client._ops import Deadline

    with Gateway(orch_url=[dead_url], max_retries=0) as gw:
        disp = gw._dispatch

        def failing(*a: Any) -> Generator[Any, Any, Any]:
            yield from ()
            raise LpConnectionError("boom")

        spent = Deadline(5.0)
        monkeypatch.setattr(spent, "remaining", lambda: 0.0)
        from livepeer.client._route import Probe

        with pytest.raises(TimeoutError):
            disp.run(
                disp._try(Probe(dead_url, "byoc", ok=True), None, spent, "c", None, None, failing)  # type: ignore[arg-type]
            )
        live = Deadline(5.0)
        monkeypatch.setattr(live, "remaining", lambda: 0.5)  # little time left is still time
        out = disp.run(
            disp._try(Probe(dead_url, "byoc", ok=True), None, live, "c", None, None, failing)  # type: ignore[arg-type]
        )
    assert out.reason == "boom"


def test_a_silent_signer_gets_the_nothing_answered_hint(dead_url: str) -> None:
    from livepeer.client import ConnectionError as LpConnectionError

    with (
        Gateway(orch_url="http://127.0.0.1:9", signer_url=dead_url) as gw,
        pytest.raises(LpConnectionError) as info,
    ):
        gw.run("text-reversal", input={"text": "x"})
    assert dispatch_mod.NOTHING_ANSWERED in str(info.value)


# -- the unprobed first try -----------------------------------------------------------------------


def test_unprobed_success_is_remembered(
    fake_orchs: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """After a probe-free success the guess is cached: a later failure fails over from the cache
    rather than probing."""
    (orch,) = fake_orchs(1)
    caplog.set_level(logging.INFO, "livepeer.client")
    with Gateway(orch_url=orch.url, max_retries=0) as gw:
        gw.run("text-reversal", input={"text": "x"})
        done = [r.getMessage() for r in caplog.records if "via byoc route" in r.getMessage()]
        assert len(done) == 1
        assert done[0].endswith("attempt 1")
        orch.request_status = 503
        with pytest.raises(NoOrchestratorError):
            gw.run("text-reversal", input={"text": "y"})
    assert orch.token_calls == 0
    assert orch.request_calls == 2


# -- BYOC repay -----------------------------------------------------------------------------------


def test_low_balance_repays_once(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.balance, orch.onchain = 1, 10_000, True
    orch.low_balance_until_paid = True
    with Gateway(orch_url=orch.url, private_key=KEY, max_retries=0) as gw:
        out = gw.run("text-reversal", input={"text": "x"})
    assert out == {"original": "x", "reversed": "x"}
    assert orch.request_calls == 2
    assert len(orch.payments) == 1


# -- list_capabilities ----------------------------------------------------------------------------


def test_list_capabilities_merges_rows(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    fake_signer.discovery = [
        {"address": orch.url, "capabilities": ["my-app", "text-to-image/sd-model"]}
    ]
    orch.runners = [
        {"app": "my-app", "url": "/apps/my-app/app", "capacity_available": 2},
        {
            "app": "my-app",
            "url": "/apps/my-app/app",
            "capacity_available": 5,
            "price_info": {"price": 3, "currency": "wei", "unit": "fixed"},
        },
    ]
    with Gateway(signer_url=fake_signer.url) as gw:
        rows = gw.list_capabilities()
    by = {(o.capability, o.route): o for o in rows}
    assert set(by) == {("my-app", "app"), ("text-to-image/sd-model", "ai")}
    app = by[("my-app", "app")]
    assert (app.orchestrator, app.price_per_unit, app.capacity) == (orch.url, 3.0, 2)
    assert app.unit
    ai = by[("text-to-image/sd-model", "ai")]
    assert (ai.orchestrator, ai.price_per_unit, ai.capacity) == (orch.url, None, None)


def test_list_capabilities_priced_row_wins(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    fake_signer.discovery = [{"address": orch.url, "capabilities": []}]
    orch.runners = [
        {
            "app": "my-app",
            "url": "/apps/my-app/app",
            "capacity_available": 5,
            "price_info": {"price": 3, "currency": "wei", "unit": "fixed"},
        },
        {"app": "my-app", "url": "/apps/my-app/app"},
    ]
    with Gateway(signer_url=fake_signer.url) as gw:
        (row,) = gw.list_capabilities()
    assert (row.capability, row.price_per_unit, row.capacity) == ("my-app", 3.0, 5)


@pytest.mark.anyio
async def test_unknown_model_lists_offered_models(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    fake_signer.discovery = [
        {"address": orch.url, "capabilities": ["text-to-image/a-model", "text-to-image/b-model"]}
    ]
    async with Gateway(signer_url=fake_signer.url) as gw:
        disp = gw._dispatch
        await disp.raise_if_model_unknown("text-to-image", None)
        await disp.raise_if_model_unknown("text-to-image", "a-model")
        with pytest.raises(CapabilityError) as info:
            await disp.raise_if_model_unknown("text-to-image", "c-model")
    assert info.value.available == ("a-model", "b-model")
    assert "text-to-image model" in str(info.value)


# -- file outputs ---------------------------------------------------------------------------------


@pytest.fixture
def media() -> Iterator[str]:
    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/missing.png":
                self.send_response(404)
                self.end_headers()
                self.wfile.write(b"gone")
                return
            body = b"\x89PNG-bytes"
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_file_output_data_url_and_fetch(media: str) -> None:
    data = "data:image/png;base64," + base64.b64encode(b"inline").decode()
    with Gateway(orch_url=media) as gw:
        disp = gw._dispatch
        inline = disp.file_output(data, media)
        assert inline.url == data
        assert inline.read() == b"inline"
        fetched = disp.file_output("/out/a.png", media)
        assert fetched.url == media + "/out/a.png"
        assert fetched.read() == b"\x89PNG-bytes"
        assert fetched.content_type == "image/png"
        with pytest.raises(APIStatusError) as info:
            disp.file_output("/missing.png", media).read()
    assert info.value.status_code == 404
    assert info.value.orchestrator == media + "/missing.png"


@pytest.mark.anyio
async def test_file_output_async_fetch(media: str) -> None:
    async with Gateway(orch_url=media) as gw:
        out = gw._dispatch.file_output("/out/b.png", media)
        assert await out.aread() == b"\x89PNG-bytes"
        assert out.content_type == "image/png"
        assert gw._dispatch._sync is None  # fetched with async I/O, not the blocking fallback


# -- owned clients --------------------------------------------------------------------------------


def _verifies(client: httpx.Client | httpx.AsyncClient) -> bool:
    """TLS verified, HTTP/1.1 only, 32 kept-alive connections: how signer/discovery clients are built."""
    import ssl

    pool = client._transport._pool  # type: ignore[union-attr]
    return bool(
        pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
        and pool._http2 is False
        and pool._max_connections == 32
    )


def test_service_clients_verify_and_are_closed() -> None:
    gw = Gateway(orch_url="http://127.0.0.1:9")
    disp = gw._dispatch
    sync = disp._service_client()
    asyn = disp._async_service_client()
    assert sync in disp._owned
    assert asyn in disp._owned
    assert _verifies(sync)
    assert _verifies(asyn)
    gw.close()
    assert sync.is_closed
    assert asyn.is_closed


def test_a_new_event_loop_gets_fresh_owned_clients() -> None:
    gw = Gateway(orch_url="http://127.0.0.1:9")
    disp = gw._dispatch
    seen: list[Any] = []

    async def grab() -> None:
        seen.append(disp.async_io().orch)

    anyio.run(grab)
    anyio.run(grab)
    first, second = seen
    assert first is not second
    assert second in disp._owned
    assert first not in disp._owned
    gw.close()
    assert second.is_closed


# -- single-flight discovery ----------------------------------------------------------------------


def test_concurrent_calls_share_one_discovery(fake_orchs: Start) -> None:
    """A call that finds discovery in flight waits for it and uses its answer (one request)."""
    import json

    (orch,) = fake_orchs(1)
    release, arrived = threading.Event(), threading.Event()
    requests: list[str] = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            arrived.set()
            release.wait(5.0)
            body = json.dumps([{"address": orch.url, "capabilities": []}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with Gateway(discovery_url=f"http://127.0.0.1:{srv.server_address[1]}") as gw:
            flights = gw._dispatch._flights
            joined = threading.Event()
            join = flights.join

            def spy(key: object) -> threading.Event | None:
                ev = join(key)
                if ev is not None:
                    joined.set()
                return ev

            flights.join = spy  # type: ignore[method-assign]
            outs: list[object] = []
            first = threading.Thread(
                target=lambda: outs.append(gw.run("text-reversal", input={"text": "ab"}))
            )
            first.start()
            assert arrived.wait(5.0)  # the leader's discovery request is in flight
            second = threading.Thread(
                target=lambda: outs.append(gw.run("text-reversal", input={"text": "cd"}))
            )
            second.start()
            assert joined.wait(5.0)
            release.set()
            first.join(5.0)
            second.join(5.0)
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(outs) == 2
    assert len(requests) == 1
    assert orch.request_calls == 2


class _Flip(list[dict[str, Any]]):
    """``app_calls`` that make the orchestrator offer the name as BYOC too once the app was called."""

    def __init__(self, orch: Any) -> None:
        super().__init__()
        self.orch = orch

    def append(self, item: dict[str, Any]) -> None:
        self.orch.capabilities = {"paid-app": 2}
        super().append(item)


def test_the_480_reprobe_keeps_the_route_it_found(fake_orchs: Start, fake_signer: Any) -> None:
    """Without ``route=``: the app was selected, so the refresh re-probes the app route only, even
    when the orchestrator has meanwhile started offering the name as a (cheaper) BYOC capability."""
    (orch,) = fake_orchs(1)
    _paid_app(orch, 7)
    orch.app_calls = _Flip(orch)
    fake_signer.payment_statuses = [480]
    with Gateway(orch_url=[orch.url], signer_url=fake_signer.url, max_retries=0) as gw:
        out = gw.run("paid-app", input={"q": 4})
    assert out == {"echo": {"q": 4}, "path": "/apps/paid-app/app"}
    assert orch.request_calls == 0


# -- limits of the listing and the media fetch ------------------------------------------------------


def test_listing_calls_are_bounded(
    fake_orchs: Start, fake_signer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each route's listing gets at most 5 s, and at most 8 run at once."""
    from livepeer.client._routes import ROUTES

    orchs = fake_orchs(2)
    fake_signer.discovery = [{"address": o.url, "capabilities": []} for o in orchs]
    timeouts: list[float] = []
    for r in ROUTES.values():
        listing = r.listing_call

        def spy(url: str, ident: Any, timeout: float, listing: Any = listing) -> Any:
            timeouts.append(timeout)
            return listing(url, ident, timeout)

        monkeypatch.setattr(r, "listing_call", spy)
    limits: list[int] = []
    from livepeer.client._ops import gather

    def gather_spy(p: Any) -> Any:
        limits.append(p.limit)
        return gather(p)

    monkeypatch.setattr(dispatch_mod, "gather", gather_spy)
    with Gateway(signer_url=fake_signer.url, timeout=60.0) as gw:
        gw.list_capabilities()
    assert timeouts
    assert set(timeouts) == {5.0}
    assert limits == [8]


def test_media_fetch_timeout(media: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    from livepeer.client._ops import request

    def spy(call: Any) -> Any:
        calls.append(call)
        return request(call)

    monkeypatch.setattr(dispatch_mod, "request", spy)
    with Gateway(orch_url=media) as gw:
        assert gw._dispatch.file_output("/c.png", media).read() == b"\x89PNG-bytes"
    assert [(c.method, c.timeout) for c in calls] == [("GET", 60.0)]


def test_list_capabilities_fills_capacity_of_a_priced_row(
    fake_orchs: Start, fake_signer: Any
) -> None:
    (orch,) = fake_orchs(1)
    fake_signer.discovery = [{"address": orch.url, "capabilities": []}]
    orch.runners = [
        {
            "app": "my-app",
            "url": "/apps/my-app/app",
            "price_info": {"price": 3, "currency": "wei", "unit": "fixed"},
        },
        {"app": "my-app", "url": "/apps/my-app/app", "capacity_available": 4},
    ]
    with Gateway(signer_url=fake_signer.url) as gw:
        (row,) = gw.list_capabilities()
    assert (row.price_per_unit, row.capacity) == (3.0, 4)
