"""First good answer wins (issue 17): a cold call does not wait for every orchestrator's probe.

Loopback fake orchestrators; a "slow" one holds its /process/token answer until the test releases it
(an event, never a sleep), so "the call returned before the slow probe" is certain, not timed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest
from starlette.applications import Starlette

from livepeer.client import Gateway, LivepeerError, _selection
from livepeer.client._discovery import Candidate
from livepeer.client._io import drive
from livepeer.client._ops import Deadline
from livepeer.client._selection import Selector
from livepeer.client._signer import Identity
from livepeer.client._transport import Background, background_of

from .conftest import FakeOrch

ZERO = Identity("0x" + "00" * 20, "0x")
CAP = "text-reversal"
Start = Callable[[int], list[FakeOrch]]


@pytest.fixture
def selectors(monkeypatch: pytest.MonkeyPatch) -> list[Selector]:
    """Gateways made in this test race (``FIRST_WINS``); their Selectors, in creation order."""
    made: list[Selector] = []
    init = Selector.__init__

    def record(self: Selector, **kw: Any) -> None:
        init(self, **kw)
        made.append(self)

    monkeypatch.setattr(_selection, "FIRST_WINS", True)
    monkeypatch.setattr(Selector, "__init__", record)
    return made


@pytest.fixture
def release() -> Iterator[threading.Event]:
    ev = threading.Event()
    yield ev
    ev.set()  # let held handlers finish so the servers can stop


def _background(gw: Gateway) -> Background:
    bg = background_of(gw._dispatch.sync_io().orch)
    assert bg is not None
    return bg


def test_one_slow_orchestrator_does_not_hold_the_first_call(
    fake_orchs: Start, release: threading.Event, selectors: list[Selector]
) -> None:
    n = _selection.RACE_MIN + 2
    orchs = _served(fake_orchs, release, n, slow_at={0})
    with Gateway(orch_url=[o.url for o in orchs], max_retries=0) as gw:
        out = gw.run(CAP, input={"text": "ab"})
        assert out == {"original": "ab", "reversed": "ba"}
        assert not release.is_set()  # the slow orchestrator has not answered its probe yet
        (sel,) = selectors
        assert not sel.cached(orchs[0].url, CAP, None)
        # Its probe lands in the cache once it answers: the flight is released at that moment.
        flight = sel._flights[_selection._Key(orchs[0].url, CAP, None)]
        others = list(sel._flights.values())
        release.set()
        assert flight.wait(10)
        assert sel.cached(orchs[0].url, CAP, None)
        assert all(ev.wait(10) for ev in others)
        # Every other orchestrator was probed in the background as well: later calls rank them all.
        assert all(sel.cached(o.url, CAP, None) for o in orchs)
        assert sum(o.request_calls for o in orchs) == 1


def _wrapped_orchs(
    fake_orchs: Start, n: int, wrap: Callable[[int, Starlette], Starlette]
) -> list[FakeOrch]:
    """``n`` fake orchestrators, the app of the ``i``-th (from 0) replaced by ``wrap(i, app)``."""
    original = FakeOrch.app
    index = iter(range(n))

    def app(self: FakeOrch) -> Starlette:
        return wrap(next(index), original(self))

    FakeOrch.app = app  # type: ignore[method-assign]
    try:
        return fake_orchs(n)
    finally:
        FakeOrch.app = original  # type: ignore[method-assign]


def _served(
    fake_orchs: Start,
    release: threading.Event,
    n: int,
    slow_at: set[int],
    arrived: threading.Event | None = None,
) -> list[FakeOrch]:
    """``n`` fake orchestrators, those at ``slow_at`` holding their probe answers until ``release``
    (``arrived`` is set when a held probe comes in)."""

    def wrap(i: int, wrapped: Starlette) -> Starlette:
        if i not in slow_at:
            return wrapped

        async def held(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/process/token":
                if arrived is not None:
                    arrived.set()
                await anyio.to_thread.run_sync(release.wait, 30.0)
            await wrapped(scope, receive, send)

        return held  # type: ignore[return-value]

    return _wrapped_orchs(fake_orchs, n, wrap)


def test_probe_returns_at_the_first_usable_answer_with_placeholders(
    fake_orchs: Start, release: threading.Event
) -> None:
    n = _selection.RACE_MIN + 3
    orchs = _served(fake_orchs, release, n, slow_at={0, 2, 3})
    with Gateway(orch_url=orchs[1].url) as gw:
        sel = Selector(first_wins=True)
        cands = [Candidate(o.url) for o in orchs]
        probes = drive(sel.probe(cands, CAP, None, ZERO, Deadline(30)), gw._dispatch.sync_io())
        assert [p.url for p in probes] == [o.url for o in orchs]  # one per candidate, in order
        assert probes[1].ok
        for i in (0, 2, 3):
            assert (probes[i].ok, probes[i].reason) == (False, "probe still running")
        usable, _ = _selection.rank(probes, None)
        assert orchs[1].url in [p.url for p in usable]
        # A second caller does not wait for the probes still out once it has a usable answer.
        again = drive(sel.probe(cands, CAP, None, ZERO, Deadline(30)), gw._dispatch.sync_io())
        assert again[1].ok
        assert not again[0].ok
        release.set()


def test_without_first_wins_every_probe_is_awaited(
    fake_orchs: Start, release: threading.Event
) -> None:
    n = _selection.RACE_MIN + 2
    orchs = _served(fake_orchs, release, n, slow_at={0})
    with Gateway(orch_url=orchs[1].url) as gw:
        sel = Selector(first_wins=False)
        cands = [Candidate(o.url) for o in orchs]
        release.set()  # otherwise this would block until the slow one answers (that is the point)
        probes = drive(sel.probe(cands, CAP, None, ZERO, Deadline(30)), gw._dispatch.sync_io())
        assert all(p.ok for p in probes)


def test_close_ends_background_probes_and_releases_their_flights(
    fake_orchs: Start, release: threading.Event
) -> None:
    n = _selection.RACE_MIN + 4
    slow_at = set(range(n)) - {1}
    orchs = _served(fake_orchs, release, n, slow_at=slow_at)
    gw = Gateway(orch_url=orchs[1].url)
    sel = Selector(first_wins=True)
    cands = [Candidate(o.url) for o in orchs]
    probes = drive(sel.probe(cands, CAP, None, ZERO, Deadline(30)), gw._dispatch.sync_io())
    assert probes[1].ok
    assert sum(p.ok for p in probes) == 1
    bg = _background(gw)
    assert bg._threads  # probes still held by the slow orchestrators
    gw.close()  # released nothing: close must end them itself
    assert not bg._threads
    assert not sel._flights  # nobody will wait for a probe that will never land
    # Probes cut short by close are not cached as failures: a new Gateway would probe them afresh.
    assert not any(sel.cached(o.url, CAP, None) for i, o in enumerate(orchs) if i in slow_at)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_race_and_aclose(
    fake_orchs: Start, release: threading.Event, selectors: list[Selector], backend: str
) -> None:
    n = _selection.RACE_MIN + 2
    orchs = _served(fake_orchs, release, n, slow_at={0, 2})

    async def main() -> tuple[Background, Selector]:
        gw = Gateway(orch_url=[o.url for o in orchs], max_retries=0)
        out: Any = await gw.run_async(CAP, input={"text": "ab"})
        assert out["reversed"] == "ba"
        assert not release.is_set()
        bg = background_of(gw._dispatch.async_io().orch)
        assert bg is not None
        assert bg._scopes
        await gw.aclose()
        assert not bg._scopes  # ended by aclose itself, not by the end of the event loop
        return bg, selectors[0]

    bg, sel = anyio.run(main, backend=backend)
    assert not bg._scopes
    assert not bg._tasks
    assert not sel._flights


def test_a_failing_winner_waits_for_the_probes_still_running_in_the_same_round(
    fake_orchs: Start, release: threading.Event
) -> None:
    # The dispatcher (Dispatcher.select), not only the selector: with max_retries=0 there is one round,
    # so the orchestrators whose probes were still running when the winner failed must be tried in it.
    n = _selection.RACE_MIN + 2
    original = FakeOrch.app
    index = iter(range(n))

    def app(self: FakeOrch) -> Starlette:
        i = next(index)
        wrapped = original(self)

        async def scripted(scope: Any, receive: Any, send: Any) -> None:
            path = scope.get("path", "") if scope["type"] == "http" else ""
            if i != 1 and path == "/process/token":
                await anyio.to_thread.run_sync(release.wait, 30.0)  # slow probes
            if i == 1 and path.startswith("/process/request"):
                release.set()  # the winner's call arrives: only now do the others answer
            await wrapped(scope, receive, send)

        return scripted  # type: ignore[return-value]

    FakeOrch.app = app  # type: ignore[method-assign]
    try:
        orchs = fake_orchs(n)
    finally:
        FakeOrch.app = original  # type: ignore[method-assign]
    orchs[1].request_statuses = [503]
    with Gateway(orch_url=[o.url for o in orchs], max_retries=0) as gw:
        assert gw._dispatch.selector.first_wins  # on by default
        out = gw.run(CAP, input={"text": "ab"})
    assert out == {"original": "ab", "reversed": "ba"}
    assert orchs[1].request_calls == 1
    assert sum(o.request_calls for o in orchs) == 2


def _watched_orchs(fake_orchs: Start, n: int, seen: list[str]) -> list[FakeOrch]:
    """Fake orchestrators that log each probe and each call's arrival, holding every call for 1 s."""

    def wrap(i: int, wrapped: Starlette) -> Starlette:
        async def watched(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/process/token":
                seen.append("probe")
            if scope["type"] == "http" and scope["path"].startswith("/process/request"):
                seen.append("call")
                # Hold the call: a probe started early would arrive meanwhile (it needs only a handshake).
                await anyio.sleep(1.0)
                seen.append("call answered")
            await wrapped(scope, receive, send)

        return watched  # type: ignore[return-value]

    return _wrapped_orchs(fake_orchs, n, wrap)


# The worker whose probe won the race moved on to the next probe at once, before the caller had even woken;
# that probe's TLS handshake then shared the CPU with the winning call (a cold call with 10 devnet
# orchestrators: 80 ms -> 41 ms once it waited). No probe may start while the call is in flight.


def test_the_winning_call_goes_before_the_next_background_probe(
    fake_orchs: Start, selectors: list[Selector], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Background, "YIELD_MAX", 60.0)  # "at most 0.5 s" must not end the wait here
    seen: list[str] = []
    n = _selection.RACE_MIN + 2
    orchs = _watched_orchs(fake_orchs, n, seen)
    with Gateway(orch_url=[o.url for o in orchs], max_retries=0) as gw:
        assert gw.run(CAP, input={"text": "ab"}) == {"original": "ab", "reversed": "ba"}
        (sel,) = selectors
        # The other orchestrators are still probed in the background, after the call.
        for ev in list(sel._flights.values()):
            assert ev.wait(10)
        assert all(sel.cached(o.url, CAP, None) for o in orchs)
    assert seen[:3] == ["probe", "call", "call answered"], seen
    assert seen.count("probe") == n


@pytest.mark.anyio
async def test_the_winning_async_call_goes_before_the_next_background_probe(
    fake_orchs: Start, selectors: list[Selector], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Background, "YIELD_MAX", 60.0)
    seen: list[str] = []
    n = _selection.RACE_MIN + 2
    orchs = _watched_orchs(fake_orchs, n, seen)
    async with Gateway(orch_url=[o.url for o in orchs], max_retries=0) as gw:
        out = await gw.run_async(CAP, input={"text": "ab"})
        assert out == {"original": "ab", "reversed": "ba"}
        (sel,) = selectors
        with anyio.fail_after(10):
            while not all(sel.cached(o.url, CAP, None) for o in orchs):  # noqa: ASYNC110
                await anyio.sleep(0.02)  # background tasks run on this loop: poll, never block it
    assert seen[:3] == ["probe", "call", "call answered"], seen
    assert seen.count("probe") == n


# A one-shot `with Gateway() as gw: gw.run(...)` closes right after its call. A background probe started in
# between made the close wait out its TLS handshake (devnet, 50 orchestrators, `max_price` set: close 5.8 ->
# 0.7 ms, cold run + close 50 vs 1 orchestrator 1.66x -> 1.19x, median of 30 interleaved rounds), so the
# first background probe waits ``Background.AFTER_WIN`` after the winning call, and a close ends that wait.


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_close_right_after_the_winning_call_starts_no_background_probe(
    fake_orchs: Start, selectors: list[Selector], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(Background, "YIELD_MAX", 600.0)
    # A close that did not end the wait would hang.
    monkeypatch.setattr(Background, "AFTER_WIN", 600.0)
    probe_after_call = threading.Event()

    class Seen(list[str]):
        def append(self, what: str) -> None:
            if what == "probe" and "call answered" in self:
                probe_after_call.set()
            super().append(what)

    seen = Seen()
    orchs = _watched_orchs(fake_orchs, _selection.RACE_MIN + 2, seen)
    urls = [o.url for o in orchs]
    if mode == "sync":
        gw = Gateway(orch_url=urls, max_retries=0)
        assert gw.run(CAP, input={"text": "ab"})["reversed"] == "ba"  # type: ignore[index]
        bg = _background(gw)
        # Without the wait, the next probe reached an orchestrator within milliseconds of the call.
        assert not probe_after_call.wait(1.0)
        gw.close()
    else:

        async def main() -> Background:
            gw = Gateway(orch_url=urls, max_retries=0)
            out = await gw.run_async(CAP, input={"text": "ab"})
            assert out["reversed"] == "ba"  # type: ignore[index]
            bg = background_of(gw._dispatch.async_io().orch)
            assert bg is not None
            with anyio.move_on_after(1.0):  # the background tasks run on this loop: yield to them
                while not probe_after_call.is_set():  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            assert not probe_after_call.is_set()
            with anyio.fail_after(30):
                await gw.aclose()
            return bg

        bg = anyio.run(main)
    # The race itself may widen to a second probe under load; nothing may be probed after the call.
    assert seen[-1] == "call answered"
    assert not probe_after_call.is_set()
    assert not bg._threads
    assert not bg._scopes
    assert not bg._tasks


def _all_held(
    fake_orchs: Start, release: threading.Event, arrived: threading.Event
) -> list[FakeOrch]:
    """Orchestrators that all hold their probe answers until ``release``."""
    n = _selection.RACE_MIN + 2
    return _served(fake_orchs, release, n, slow_at=set(range(n)), arrived=arrived)


def test_close_from_another_thread_ends_a_call_still_racing(
    fake_orchs: Start,
    release: threading.Event,
    selectors: list[Selector],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every probe is held: the call still waits for its first good answer when another thread closes
    # the Gateway. It must end then with one of our errors, not sleep out the race's timeout (the
    # probe timeout, raised here so that only the close can end the wait) and not raise httpx's
    # RuntimeError for a closed client.
    monkeypatch.setattr(_selection, "PROBE_TIMEOUT", 600.0)
    arrived = threading.Event()
    orchs = _all_held(fake_orchs, release, arrived)
    gw = Gateway(orch_url=[o.url for o in orchs], max_retries=0, timeout=600)
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(gw.run(CAP, input={"text": "ab"}))
        except Exception as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert arrived.wait(30)
    gw.close()
    caller.join(60)
    assert not caller.is_alive()
    (exc,) = outcome
    assert isinstance(exc, LivepeerError), exc
    assert "the Gateway was closed" in str(exc)
    assert not release.is_set()  # no probe was answered: the close alone ended the call


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_aclose_from_another_task_ends_a_call_still_racing(
    fake_orchs: Start,
    release: threading.Event,
    selectors: list[Selector],
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    monkeypatch.setattr(_selection, "PROBE_TIMEOUT", 600.0)
    arrived = threading.Event()
    orchs = _all_held(fake_orchs, release, arrived)
    outcome: list[object] = []

    async def main() -> None:
        gw = Gateway(orch_url=[o.url for o in orchs], max_retries=0, timeout=600)

        async def call() -> None:
            try:
                outcome.append(await gw.run_async(CAP, input={"text": "ab"}))
            except Exception as exc:
                outcome.append(exc)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                assert await anyio.to_thread.run_sync(arrived.wait, 30)
                await gw.aclose()

    anyio.run(main, backend=backend)
    (exc,) = outcome
    assert isinstance(exc, LivepeerError), exc
    assert "the Gateway was closed" in str(exc)
    assert not release.is_set()
