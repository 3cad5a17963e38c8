"""The dispatcher's select → rank → try → fail over loop, driven by hand (no network).

``Dispatcher.select``, ``_try``, ``candidates`` and ``_request`` are sans-IO ops: each test runs one against a
scripted ``Selector`` (its ``probe`` answers from a script and records what it was asked; the cache, ``forget``
and ``mark_failed`` are the real ones), scripted attempts that record which orchestrator and route they were
given, and scripted replies for the discovery requests. What is asserted is what the loop does: which
orchestrators it tries in which order, how many rounds it probes and with which arguments, how often it
refreshes a stale signer, what it raises with which fields, what it records on the attempt span (an
OpenTelemetry SDK tracer installed through ``_telemetry``'s hook), and when the discovery cache expires.
Loopback tests of the same policy through ``Gateway`` are in test_dispatch.py.
"""

from __future__ import annotations

import inspect
import json
import logging
import ssl
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from livepeer.client import (
    APIStatusError,
    CapabilityError,
    ConfigError,
    Gateway,
    NoOrchestratorError,
    SignerRefreshError,
)
from livepeer.client import _dispatch as dispatch_mod
from livepeer.client import _telemetry as telemetry
from livepeer.client._discovery import Candidate
from livepeer.client._dispatch import Dispatcher
from livepeer.client._errors import (
    ConnectionError,
    LivepeerError,
    Rejection,
    SignerPriceError,
    TimeoutError,
)
from livepeer.client._ops import Call, Deadline, Parallel, Reply, Sleep, Wait
from livepeer.client._route import Probe, Request
from livepeer.client._selection import Selector

A = "https://a.test:8935"
B = "https://b.test:8935"
DISCOVERY = "https://discovery.test/orchestrators"
SIGNER = "https://signer.test"
KEY = "0x" + "4c" * 32
CAP = "my-cap"  # a BYOC name: BYOC first, then a live-runner app
Script = Sequence[Probe] | Callable[[], Sequence[Probe]]


def ok(url: str, kind: str = "byoc", price: float = 0.0, **kw: Any) -> Probe:
    return Probe(url, kind, ok=True, price=price, capacity=1, **kw)


def bad(url: str, reason: str, **kw: Any) -> Probe:
    return Probe(url, "byoc", ok=False, reason=reason, **kw)


def reply(status: int = 200, body: object = b"", url: str = A) -> Reply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, {}, raw, url, 0.0)


class ScriptedSelector(Selector):
    """``probe`` answers from ``script`` (one entry per call) once the script has entries left, and from the
    real cache-backed probe otherwise (a test then answers no I/O: every candidate must be cached).
    ``asked`` records each call's candidates and keyword arguments with the defaults filled in, so a
    dropped argument counts only where it changes what the selector is asked."""

    def __init__(self, *script: Script) -> None:
        super().__init__()
        self.script = list(script)
        self.asked: list[dict[str, Any]] = []
        self.failed: list[tuple[str, str, str, str | None]] = []

    def probe(
        self, candidates: Sequence[Candidate], *args: Any, **kw: Any
    ) -> Generator[Any, Any, list[Probe]]:
        bound = inspect.signature(Selector.probe).bind(self, candidates, *args, **kw)
        bound.apply_defaults()
        asked = dict(bound.arguments)
        del asked["self"], asked["ident"], asked["deadline"]
        asked["candidates"] = [c.url for c in candidates]
        self.asked.append(asked)
        if not self.script:
            found: list[Probe] = yield from super().probe(candidates, *args, **kw)
            return found
        entry = self.script.pop(0)
        return list(entry() if callable(entry) else entry)

    def mark_failed(
        self,
        probe: Probe,
        capability: str,
        model: str | None,
        reason: str,
        route: str | None = None,
    ) -> None:
        self.failed.append((probe.url, probe.kind, reason, route))
        super().mark_failed(probe, capability, model, reason, route)


class Attempts:
    """A route attempt answering from ``outcomes`` per orchestrator URL (an exception is raised), recording
    ``(url, kind)`` of every probe it is given and the probes themselves."""

    def __init__(self, **outcomes: list[object]) -> None:
        self.outcomes = {({"a": A, "b": B}[k]): list(v) for k, v in outcomes.items()}
        self.tried: list[tuple[str, str]] = []
        self.probes: list[Probe] = []

    def __call__(self, ident: object, probe: Probe, deadline: Deadline) -> Generator[Any, Any, Any]:
        self.tried.append((probe.url, probe.kind))
        self.probes.append(probe)
        if len(self.tried) > 20:
            raise AssertionError("the loop does not end")
        queue = self.outcomes[probe.url]
        out = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(out, BaseException):
            raise out
        yield from ()
        return out


def fail(url: str, why: str = "HTTP 503: busy") -> Rejection:
    return Rejection(url, why)


def drive(
    op: Generator[Any, Any, Any],
    answer: Callable[[Any], Any] | None = None,
    steps: list[Any] | None = None,
) -> tuple[Any, list[Any]]:
    """Run an op as the drivers do: Sleep and Wait return at once, every other step goes to ``answer``
    (none is expected without one), and an error ``answer`` raises is thrown into the op. The op's result
    and every step it yielded (also kept in ``steps`` when the op raises)."""
    seen: list[Any] = [] if steps is None else steps
    try:
        step = next(op)
        while True:
            seen.append(step)
            if isinstance(step, (Sleep, Wait)):
                step = op.send(None)
                continue
            if answer is None:
                raise AssertionError(f"unexpected I/O: {step!r}")
            try:
                got = answer(step)
            except LivepeerError as exc:
                step = op.throw(exc)
                continue
            step = op.send(got)
    except StopIteration as stop:
        return stop.value, seen


def drive_raises(
    op: Generator[Any, Any, Any],
    exc: type[BaseException],
    answer: Callable[[Any], Any] | None = None,
) -> tuple[pytest.ExceptionInfo[Any], list[Any]]:
    steps: list[Any] = []
    with pytest.raises(exc) as info:
        drive(op, answer, steps)
    return info, steps


def dispatcher(*urls: str, selector: ScriptedSelector | None = None, **settings: Any) -> Dispatcher:
    gw = Gateway(orch_url=list(urls) or [A], **settings)
    disp = gw._dispatch
    if selector is not None:
        disp.selector = selector
    return disp


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rounds' ``backoff`` arguments; every pause is 0.25 s (not random, not slept: Sleep is a step)."""
    asked: list[int] = []

    def backoff(n: int) -> float:
        asked.append(n)
        return 0.25

    monkeypatch.setattr(dispatch_mod, "backoff", backoff)
    return asked


def sleeps(steps: list[Any]) -> list[float]:
    return [s.seconds for s in steps if isinstance(s, Sleep)]


def asked(sel: ScriptedSelector, *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(a[k] for k in keys) for a in sel.asked]


# -- rounds, order, bookkeeping ---------------------------------------------------------------------


def test_usable_probes_are_tried_in_rank_order_then_a_new_round_reprobes(
    pauses: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    sel = ScriptedSelector([ok(A, price=2), ok(B, price=1)], [ok(A, price=2), ok(B, price=1)])
    att = Attempts(a=[fail(A, "HTTP 503: a busy")], b=[fail(B), "done"])
    disp = dispatcher(A, B, selector=sel, max_retries=3)
    caplog.set_level(logging.INFO, "livepeer.client")
    (out, probe), steps = drive(disp.select(CAP, None, att, Deadline(30.0)))
    assert out == "done"
    assert (probe.url, probe.kind) == (B, "byoc")
    # B is cheaper: first in both rounds; A is tried in round 0 only (round 1 succeeds on B).
    assert att.tried == [(B, "byoc"), (A, "byoc"), (B, "byoc")]
    assert asked(sel, "candidates", "retry_failed", "route", "max_price", "first_wins") == [
        ([A, B], False, None, None, None),
        ([A, B], True, None, None, None),
    ]
    assert pauses == [0]
    assert sleeps(steps) == [0.25]
    # Each failed attempt is remembered so that the next call does not start there.
    assert sel.failed == [
        (B, "byoc", "HTTP 503: busy", None),
        (A, "byoc", "HTTP 503: a busy", None),
    ]
    # Attempts are counted across rounds.
    (done,) = [r.getMessage() for r in caplog.records if "via byoc route" in r.getMessage()]
    assert done.startswith(f"{CAP}: {B} via byoc route, started, ")
    assert done.endswith("attempt 3")


def test_rounds_are_max_retries_plus_one_with_growing_backoff(pauses: list[int]) -> None:
    sel = ScriptedSelector(*([[ok(A)]] * 5))
    att = Attempts(a=[fail(A)])
    disp = dispatcher(A, selector=sel, max_retries=2, max_price=10.0)  # max_price: no unprobed try
    info, _ = drive_raises(disp.select(CAP, None, att, Deadline(30.0)), NoOrchestratorError)
    assert att.tried == [(A, "byoc")] * 3
    assert len(sel.asked) == 3
    assert asked(sel, "max_price") == [(10.0,)] * 3
    assert pauses == [0, 1]
    assert [(r.orchestrator, r.reason) for r in info.value.rejections] == [(A, "HTTP 503: busy")]
    assert info.value.hint == ""


def test_the_route_is_passed_to_every_probe(pauses: list[int]) -> None:
    sel = ScriptedSelector([bad(A, "connection refused", reachable=False)], [ok(A, "apps")])
    att = Attempts(a=["done"])
    disp = dispatcher(A, selector=sel, max_retries=1)
    (out, _), _ = drive(disp.select(CAP, None, att, Deadline(30.0), route="app"))
    assert out == "done"
    assert asked(sel, "route", "retry_failed") == [("app", False), ("app", True)]


def test_round_zero_does_not_resend_the_failed_unprobed_guess(pauses: list[int]) -> None:
    """The probe-free guess failed: round 0 must not send the same request there again at once, but the
    next round does, and another route of the same orchestrator is tried at once."""
    sel = ScriptedSelector([ok(A)], [ok(A)])
    att = Attempts(a=[fail(A, "HTTP 500: oops"), "done"])
    disp = dispatcher(A, selector=sel, max_retries=1)
    (out, _), steps = drive(disp.select(CAP, None, att, Deadline(30.0), unprobed=True))
    assert out == "done"
    assert att.tried == [(A, "byoc"), (A, "byoc")]
    assert len(sel.asked) == 2  # the second try came from round 1
    assert sleeps(steps) == [0.25]

    sel = ScriptedSelector([ok(A, "apps")])
    att = Attempts(a=[fail(A, "HTTP 500: oops"), "done"])
    disp = dispatcher(A, selector=sel, max_retries=1)
    (out, probe), steps = drive(disp.select(CAP, None, att, Deadline(30.0), unprobed=True))
    assert (out, probe.kind) == ("done", "apps")
    assert att.tried == [(A, "byoc"), (A, "apps")]
    assert sleeps(steps) == []


def test_the_guess_failure_is_the_reason_when_probing_finds_nothing(pauses: list[int]) -> None:
    sel = ScriptedSelector([ok(A)])
    att = Attempts(a=[fail(A, "HTTP 500: oops")])
    disp = dispatcher(A, selector=sel, max_retries=0)
    info, _ = drive_raises(
        disp.select(CAP, None, att, Deadline(30.0), unprobed=True), NoOrchestratorError
    )
    assert att.tried == [(A, "byoc")]
    assert [(r.orchestrator, r.reason) for r in info.value.rejections] == [(A, "HTTP 500: oops")]


def test_pending_probes_are_awaited_before_a_round_is_given_up(pauses: list[int]) -> None:
    running = Probe(B, "byoc", ok=False, reason="probe still running", offers=True, pending=True)
    sel = ScriptedSelector([ok(A), running], [ok(A), ok(B)])
    att = Attempts(a=[fail(A)], b=["done"])
    disp = dispatcher(A, B, selector=sel, max_retries=0, max_price=5.0)
    (out, probe), steps = drive(disp.select(CAP, None, att, Deadline(30.0), route="byoc"))
    assert (out, probe.url) == ("done", B)
    assert att.tried == [(A, "byoc"), (B, "byoc")]  # A is not tried twice in one round
    assert asked(sel, "first_wins", "route", "max_price", "retry_failed") == [
        (None, "byoc", 5.0, False),
        (False, "byoc", 5.0, False),
    ]
    assert sleeps(steps) == []


def test_a_pending_probe_that_fails_ends_the_round(pauses: list[int]) -> None:
    running = Probe(B, "byoc", ok=False, reason="probe still running", offers=True, pending=True)
    sel = ScriptedSelector([ok(A), running], [ok(A), bad(B, "HTTP 500 on probe")])
    att = Attempts(a=[fail(A)])
    disp = dispatcher(A, B, selector=sel, max_retries=0, max_price=5.0)
    info, _ = drive_raises(disp.select(CAP, None, att, Deadline(30.0)), NoOrchestratorError)
    assert att.tried == [(A, "byoc")]
    assert len(sel.asked) == 2
    assert [(r.orchestrator, r.reason) for r in info.value.rejections] == [
        (A, "HTTP 503: busy"),
        (B, "HTTP 500 on probe"),
    ]


def test_a_round_without_pending_probes_is_not_reprobed(pauses: list[int]) -> None:
    sel = ScriptedSelector([ok(A), bad(B, "no capacity")])
    att = Attempts(a=[fail(A)])
    disp = dispatcher(A, B, selector=sel, max_retries=0)
    drive_raises(disp.select(CAP, None, att, Deadline(30.0)), NoOrchestratorError)
    assert len(sel.asked) == 1


def test_unreachable_candidates_get_retry_rounds_and_the_hint(pauses: list[int]) -> None:
    down = [
        bad(A, "connection refused", reachable=False),
        bad(B, "connect timeout", reachable=False),
    ]
    sel = ScriptedSelector(down, down)
    disp = dispatcher(A, B, selector=sel, max_retries=1)
    att = Attempts()
    info, steps = drive_raises(disp.select(CAP, None, att, Deadline(30.0)), NoOrchestratorError)
    assert att.tried == []
    assert len(sel.asked) == 2
    assert sleeps(steps) == [0.25]
    assert info.value.hint == f"nothing answered at {A}, {B}: {dispatch_mod.NOTHING_ANSWERED}"


def test_every_candidate_over_max_price_ends_without_rounds(pauses: list[int]) -> None:
    sel = ScriptedSelector([ok(A, price=50), ok(B, price=60)])
    disp = dispatcher(A, B, selector=sel, max_retries=3, max_price=10.0)
    att = Attempts()
    info, steps = drive_raises(disp.select(CAP, None, att, Deadline(30.0)), NoOrchestratorError)
    assert len(sel.asked) == 1
    assert sleeps(steps) == []
    assert all("above max_price" in r.reason for r in info.value.rejections)


def test_some_over_max_price_and_some_down_gets_rounds(pauses: list[int]) -> None:
    probes = [ok(A, price=50), bad(B, "connection refused", reachable=False)]
    sel = ScriptedSelector(probes, probes)
    disp = dispatcher(A, B, selector=sel, max_retries=1, max_price=10.0)
    drive_raises(disp.select(CAP, None, Attempts(), Deadline(30.0)), NoOrchestratorError)
    assert len(sel.asked) == 2


class FixedDeadline(Deadline):
    def __init__(self, left: float) -> None:
        super().__init__(30.0)
        self.left = left

    def remaining(self) -> float:
        return self.left


@pytest.mark.parametrize(("left", "rounds"), [(0.0, 1), (0.5, 3)])
def test_a_spent_deadline_ends_the_rounds(pauses: list[int], left: float, rounds: int) -> None:
    sel = ScriptedSelector(*([[ok(A)]] * 3))
    att = Attempts(a=[fail(A)])
    disp = dispatcher(A, selector=sel, max_retries=2, max_price=10.0)
    drive_raises(disp.select(CAP, None, att, FixedDeadline(left)), NoOrchestratorError)
    assert len(att.tried) == rounds


def test_no_candidates_is_no_orchestrator_error_with_the_hint() -> None:
    disp = Gateway(discovery_url=DISCOVERY)._dispatch

    def refused(step: Any) -> Any:
        raise ConnectionError("connection refused")

    info, _ = drive_raises(
        disp.select(CAP, None, Attempts(), Deadline(30.0)), NoOrchestratorError, refused
    )
    assert info.value.rejections[0].orchestrator == DISCOVERY
    assert info.value.hint.startswith(f"nothing answered at {DISCOVERY}: ")


# -- CapabilityError when nobody offers the name ------------------------------------------------------


def _discovery_answer(caps: dict[str, list[str]]) -> Callable[[Any], Any]:
    """Discovery lists ``caps``; every route's own listing of an orchestrator is refused (404)."""

    def answer(step: Any) -> Any:
        if isinstance(step, Call) and step.url == DISCOVERY:
            return reply(
                200, [{"address": u, "capabilities": c} for u, c in caps.items()], DISCOVERY
            )
        if isinstance(step, Parallel):
            return [reply(404, b"not here") for _ in step.calls]
        raise AssertionError(f"unexpected I/O: {step!r}")

    return answer


def _unknown_dispatcher(*script: Script) -> tuple[Dispatcher, ScriptedSelector]:
    gw = Gateway(discovery_url=DISCOVERY, max_retries=1)
    sel = ScriptedSelector(*script)
    gw._dispatch.selector = sel
    return gw._dispatch, sel


def nothing(url: str, **kw: Any) -> Probe:
    kw.setdefault("offers", False)
    return bad(url, "no capability", **kw)


def test_capability_error_when_every_candidate_answered_and_none_offers(pauses: list[int]) -> None:
    disp, sel = _unknown_dispatcher([nothing(A), nothing(B)])
    info, _ = drive_raises(
        disp.select(CAP, None, Attempts(), Deadline(30.0), check_unknown=True),
        CapabilityError,
        _discovery_answer({A: ["other-cap"], B: ["text-to-image/sd"]}),
    )
    assert info.value.capability == CAP
    assert info.value.available == ("other-cap", "text-to-image/sd")
    assert len(sel.asked) == 1


@pytest.mark.parametrize(
    "probes",
    [
        [nothing(A), nothing(B, reachable=False)],  # one did not answer
        [nothing(A), nothing(B, offers=True)],  # one offers it (no capacity now)
    ],
)
def test_no_capability_error_unless_everyone_answered_without_it(
    pauses: list[int], probes: list[Probe]
) -> None:
    disp, sel = _unknown_dispatcher(probes, probes)
    info, _ = drive_raises(
        disp.select(CAP, None, Attempts(), Deadline(30.0), check_unknown=True),
        NoOrchestratorError,
        _discovery_answer({A: ["other-cap"], B: ["x"]}),
    )
    assert not isinstance(info.value, CapabilityError)
    assert len(sel.asked) == 2


def test_capability_check_only_in_round_zero(pauses: list[int]) -> None:
    """Round 1's answers may say "nobody offers it", but only round 0 decides (a later round's set of
    answers is what is left after failures, not the network's offer)."""
    down = [nothing(A, reachable=False), nothing(B, reachable=False)]
    disp, sel = _unknown_dispatcher(down, [nothing(A), nothing(B)])
    info, _ = drive_raises(
        disp.select(CAP, None, Attempts(), Deadline(30.0), check_unknown=True),
        NoOrchestratorError,
        _discovery_answer({A: ["other-cap"], B: ["x"]}),
    )
    assert not isinstance(info.value, CapabilityError)
    assert len(sel.asked) == 2


def test_select_defaults_neither_guess_nor_check_the_name(pauses: list[int]) -> None:
    """What every live start gets: probes before any attempt, and the rejections rather than a
    CapabilityError (a live start's refusal says more than the offer list)."""
    disp, sel = _unknown_dispatcher([nothing(A)], [nothing(A)])
    info, steps = drive_raises(
        disp.select(CAP, None, Attempts(), Deadline(30.0)),
        NoOrchestratorError,
        _discovery_answer({A: ["other-cap"]}),
    )
    assert not isinstance(info.value, CapabilityError)
    assert not any(isinstance(s, Parallel) for s in steps)  # no listing was asked for

    sel = ScriptedSelector([ok(A)])
    att = Attempts(a=["started"])
    disp = dispatcher(A, selector=sel)
    (out, _), _ = drive(disp.select(CAP, None, att, Deadline(30.0)))
    assert out == "started"
    assert len(sel.asked) == 1  # probed first: no probe-free guess without unprobed=True


def test_no_capability_error_without_an_offer_list(pauses: list[int]) -> None:
    """Nothing discoverable lists any name: absence is not proven, the rejections are the answer."""
    disp, _ = _unknown_dispatcher([nothing(A)], [nothing(A)])
    info, _ = drive_raises(
        disp.select(CAP, None, Attempts(), Deadline(30.0), check_unknown=True),
        NoOrchestratorError,
        _discovery_answer({A: []}),
    )
    assert not isinstance(info.value, CapabilityError)


def test_a_candidate_no_round_reached_is_not_tried() -> None:
    sel = ScriptedSelector([ok(A)])
    att = Attempts(a=[fail(A)])
    disp = dispatcher(A, B, selector=sel, max_retries=0)
    info, _ = drive_raises(disp.select(CAP, None, att, Deadline(30.0)), NoOrchestratorError)
    assert [(r.orchestrator, r.reason) for r in info.value.rejections] == [
        (A, "HTTP 503: busy"),
        (B, "not tried"),
    ]


# -- the probe-free guess -------------------------------------------------------------------------


def test_one_free_orchestrator_is_tried_before_probing_and_remembered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sel = ScriptedSelector()
    att = Attempts(a=["started"])
    disp = dispatcher(A, selector=sel)
    caplog.set_level(logging.INFO, "livepeer.client")
    (out, guess), _ = drive(disp.select(CAP, None, att, Deadline(30.0), unprobed=True))
    assert out == "started"
    assert sel.asked == []
    assert (guess.url, guess.kind, guess.ok) == (A, "byoc", True)
    assert [p.ok for p in att.probes] == [True]
    (done,) = [r.getMessage() for r in caplog.records if "via byoc route" in r.getMessage()]
    assert done.endswith("attempt 1")
    # The guess is cached: the next call ranks it (from the cache, no I/O) and uses it.
    (out, again), _ = drive(disp.select(CAP, None, att, Deadline(30.0), unprobed=True))
    assert out == "started"
    assert len(sel.asked) == 1
    assert again is guess
    assert att.tried == [(A, "byoc"), (A, "byoc")]


@pytest.mark.parametrize(
    ("urls", "settings", "route"),
    [
        ((A, B), {}, None),  # two to choose from: rank them
        ((A,), {"private_key": KEY}, None),  # on-chain: a JobToken is needed to pay
        ((A,), {"max_price": 10.0}, None),  # a price ceiling: the price must be known
        ((A,), {}, "app"),  # an app's runner URL comes from the probe
    ],
)
def test_the_guess_needs_one_free_byoc_orchestrator(
    urls: tuple[str, ...], settings: dict[str, Any], route: str | None
) -> None:
    sel = ScriptedSelector([ok(u, "apps" if route else "byoc") for u in urls])
    att = Attempts(a=["started"], b=["started"])
    disp = dispatcher(*urls, selector=sel, **settings)
    drive(disp.select(CAP, None, att, Deadline(30.0), route=route, unprobed=True))  # type: ignore[arg-type]
    assert len(sel.asked) == 1
    assert len(att.tried) == 1


# -- _try: signer statuses, transport errors, the attempt span ---------------------------------------


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Spans of the code under test, through the tracer hook of ``_telemetry`` (no global provider)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "_tracer", provider.get_tracer("livepeer.client"))
    monkeypatch.setattr(telemetry, "_checked", True)
    yield exporter
    provider.shutdown()


def _attrs(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    return [dict(s.attributes or {}) for s in exporter.get_finished_spans()]


def test_signer_480_refreshes_three_times_then_raises(spans: InMemorySpanExporter) -> None:
    fresh = [ok(A, "apps", price=n) for n in (1, 2, 3, 4, 5)]
    sel = ScriptedSelector(*([p] for p in fresh))
    disp = dispatcher(A, selector=sel)
    att = Attempts(a=[SignerRefreshError("stale")])
    first = ok(A, "apps", price=0)
    drive_raises(
        disp._try(first, None, Deadline(30.0), CAP, None, None, att),  # type: ignore[arg-type]
        SignerRefreshError,
    )
    # The first try and three refreshes, each with the probe the refresh brought.
    assert [p.price for p in att.probes] == [0, 1, 2, 3]
    assert asked(sel, "candidates", "route") == [([A], "app")] * 3
    (span,) = spans.get_finished_spans()
    assert span.attributes["error.type"] == "SignerRefreshError"  # type: ignore[index]


def test_signer_480_forgets_the_stale_probe_under_both_routes() -> None:
    """The stale probe is cached under the call's route (None) and the pinned one ("app"): both must go,
    or the next call pays with the stale ticket parameters again."""
    sel = ScriptedSelector([ok(A, "apps", price=9)])
    disp = dispatcher(A, selector=sel)
    stale = ok(A, "apps")
    sel.store(stale, CAP, None, None)
    sel.store(stale, CAP, None, "app")
    att = Attempts(a=[SignerRefreshError("stale"), "paid"])
    out, _ = drive(disp._try(stale, None, Deadline(30.0), CAP, None, None, att))  # type: ignore[arg-type]
    assert out == "paid"
    assert [p.price for p in att.probes] == [0, 9]
    assert not sel.cached(A, CAP, None, None)
    assert not sel.cached(A, CAP, None, "app")


def test_signer_480_with_a_route_keeps_it(spans: InMemorySpanExporter) -> None:
    sel = ScriptedSelector([ok(A, "byoc", price=9)])
    disp = dispatcher(A, selector=sel)
    stale = ok(A, "byoc")
    sel.store(stale, CAP, None, "byoc")
    att = Attempts(a=[SignerRefreshError("stale"), reply(201)])
    out, _ = drive(disp._try(stale, None, Deadline(30.0), CAP, None, "byoc", att))  # type: ignore[arg-type]
    assert out.status == 201
    assert asked(sel, "route") == [("byoc",)]
    assert not sel.cached(A, CAP, None, "byoc")
    (attrs,) = _attrs(spans)
    assert attrs["http.response.status_code"] == 201
    assert "error.type" not in attrs
    assert "livepeer.failover.reason" not in attrs


def test_a_failed_refresh_probe_moves_on_with_its_reason(spans: InMemorySpanExporter) -> None:
    sel = ScriptedSelector([bad(A, "HTTP 502 on re-probe")])
    disp = dispatcher(A, selector=sel)
    att = Attempts(a=[SignerRefreshError("stale")])
    out, _ = drive(disp._try(ok(A, "apps"), None, Deadline(30.0), CAP, None, None, att))  # type: ignore[arg-type]
    assert out == Rejection(A, "HTTP 502 on re-probe")
    assert len(att.tried) == 1
    (attrs,) = _attrs(spans)
    assert attrs["livepeer.failover.reason"] == "HTTP 502 on re-probe"
    assert attrs["error.type"] == "rejected"


def test_rejection_reason_on_the_span_is_cut_at_200(spans: InMemorySpanExporter) -> None:
    disp = dispatcher(A)
    long = "x" * 150 + "y" * 150
    att = Attempts(a=[fail(A, long)])
    out, _ = drive(disp._try(ok(A), None, Deadline(30.0), CAP, None, None, att))  # type: ignore[arg-type]
    assert out.reason == long
    (attrs,) = _attrs(spans)
    assert attrs["livepeer.failover.reason"] == long[:200]
    assert attrs["livepeer.route"] == "byoc"


def test_a_started_job_has_no_status_on_its_span(spans: InMemorySpanExporter) -> None:
    disp = dispatcher(A)
    out, _ = drive(disp._try(ok(A), None, Deadline(30.0), CAP, None, None, Attempts(a=["started"])))  # type: ignore[arg-type]
    assert out == "started"
    (attrs,) = _attrs(spans)
    assert not {"http.response.status_code", "error.type", "livepeer.failover.reason"} & set(attrs)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ConnectionError("connection reset"), "connection reset"),
        (ConnectionError(""), "ConnectionError"),
        (TimeoutError(""), "TimeoutError"),
        (SignerPriceError("481"), "price above the signer's ceiling (481)"),
    ],
)
def test_errors_that_move_on(exc: Exception, reason: str) -> None:
    disp = dispatcher(A)
    att = Attempts(a=[exc])
    out, _ = drive(disp._try(ok(A), None, Deadline(30.0), CAP, None, None, att))  # type: ignore[arg-type]
    assert out == Rejection(A, reason)
    assert len(att.tried) == 1


@pytest.mark.parametrize(("left", "timeout"), [(0.0, True), (0.5, False)])
def test_a_transport_error_with_no_time_left_is_the_deadline(left: float, timeout: bool) -> None:
    disp = dispatcher(A)
    att = Attempts(a=[ConnectionError("connection reset")])
    op = disp._try(ok(A), None, FixedDeadline(left), CAP, None, None, att)  # type: ignore[arg-type]
    if timeout:
        with pytest.raises(TimeoutError, match="deadline of 30s exceeded"):
            drive(op)
    else:
        out, _ = drive(op)
        assert out == Rejection(A, "connection reset")


# -- the discovery cache ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _discovery(answers: list[Reply], seen: list[str]) -> Callable[[Any], Reply]:
    def answer(step: Any) -> Reply:
        assert isinstance(step, Call)
        seen.append(step.url)
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return answer


def listed(*urls: str) -> Reply:
    return reply(200, [{"address": u, "capabilities": []} for u in urls], DISCOVERY)


@pytest.mark.parametrize(("age", "again"), [(59.9, False), (60.0, True), (60.5, True)])
def test_discovery_is_cached_for_sixty_seconds(
    monkeypatch: pytest.MonkeyPatch, age: float, again: bool
) -> None:
    clock = Clock()
    monkeypatch.setattr(dispatch_mod, "time", SimpleNamespace(monotonic=clock.monotonic))
    disp = Gateway(discovery_url=DISCOVERY)._dispatch
    seen: list[str] = []
    answer = _discovery([listed(A), listed(B)], seen)
    (found, rejections), _ = drive(disp.candidates(), answer)
    assert ([c.url for c in found], rejections) == ([A], [])
    clock.now += age
    (found, _), _ = drive(disp.candidates(), answer)
    assert [c.url for c in found] == ([B] if again else [A])
    assert len(seen) == (2 if again else 1)


def test_an_empty_discovery_is_not_cached_and_releases_its_flight() -> None:
    disp = Gateway(discovery_url=DISCOVERY)._dispatch
    seen: list[str] = []
    answer = _discovery([reply(200, [], DISCOVERY), listed(A)], seen)
    (found, _), _ = drive(disp.candidates(), answer)
    assert found == []
    (found, _), steps = drive(disp.candidates(), answer)
    assert [c.url for c in found] == [A]
    assert not any(isinstance(s, Wait) for s in steps)  # the first call's flight is over
    assert len(seen) == 2


def test_a_caller_behind_a_discovery_in_flight_waits_and_uses_its_answer() -> None:
    disp = Gateway(discovery_url=DISCOVERY)._dispatch
    assert disp._flights.join("discovery") is None  # another caller leads
    gen = disp.candidates()
    wait = next(gen)
    assert isinstance(wait, Wait)
    assert wait.timeout == 10.0
    # The leader finishes while we wait: its answer is cached.
    disp._candidates = (time.monotonic(), [Candidate(B)], [])
    disp._flights.done("discovery")
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    found, _ = stop.value.value
    assert [c.url for c in found] == [B]


def test_a_caller_behind_a_failed_discovery_asks_itself() -> None:
    disp = Gateway(discovery_url=DISCOVERY)._dispatch
    assert disp._flights.join("discovery") is None
    seen: list[str] = []
    (found, _), steps = drive(disp.candidates(), _discovery([listed(A)], seen))
    assert isinstance(steps[0], Wait)
    assert [c.url for c in found] == [A]
    assert seen == [DISCOVERY]


def test_a_discovery_fallback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "livepeer.client")
    disp = Gateway(discovery_url=DISCOVERY, signer_url=SIGNER)._dispatch
    seen: list[str] = []

    def answer(step: Any) -> Reply:
        seen.append(step.url)
        if step.url == DISCOVERY:
            return reply(500, b"down", DISCOVERY)
        return listed(A)

    (found, rejections), _ = drive(disp.candidates(), answer)
    assert [c.url for c in found] == [A]
    assert len(rejections) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"discovery fell back: {DISCOVERY}: discovery answered 500"
    ]

    caplog.clear()
    disp = Gateway(discovery_url=DISCOVERY)._dispatch
    drive(disp.candidates(), _discovery([listed(A)], []))
    assert caplog.records == []  # a healthy discovery is not a degraded path


# -- execute and _request ---------------------------------------------------------------------------


def test_run_refuses_a_bad_path_before_any_io() -> None:
    disp = dispatcher(A)
    for cap, path in (("text-to-image", "x"), (CAP, "a/../b")):
        with pytest.raises(ConfigError):
            next(disp.execute(cap, {"prompt": "p"}, None, None, False, None, path))


def test_run_selects_by_the_pipelines_default_model() -> None:
    """A built-in pipeline's request gets the Go gateway's defaults before selection: orchestrators are
    probed for the default model."""
    sel = ScriptedSelector([bad(A, "no such model", reachable=False)])
    disp = dispatcher(A, selector=sel, max_retries=0)
    drive_raises(
        disp.execute("text-to-image", {"prompt": "p"}, None, None, False), NoOrchestratorError
    )
    assert asked(sel, "capability", "model", "route") == [
        ("text-to-image", "stabilityai/sdxl-turbo", None)
    ]


def test_run_tells_the_llm_request_which_verb_it_is() -> None:
    """stream=True reaches prepare: a streamed llm request whose input asks for a stream is not refused."""
    sel = ScriptedSelector([bad(A, "gone", reachable=False)])
    disp = dispatcher(A, selector=sel, max_retries=0)
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    drive_raises(disp.execute("llm", body, None, None, True), NoOrchestratorError)
    assert asked(sel, "capability") == [("llm",)]


def test_an_identity_refused_as_another_keys_is_fetched_again_before_the_next_round(
    pauses: list[int],
) -> None:
    from livepeer.client import _signer

    stale = _signer.Identity("0x" + "11" * 20, "0x" + "22" * 65)
    fresh = {"address": "0x" + "33" * 20, "signature": "0x" + "44" * 65}
    _signer._identity_cache[(SIGNER, ())] = stale
    refused = (
        "GetOrchestrator failed: Invalid orchestrator request: orchestrator req sig check failed"
    )
    sel = ScriptedSelector([bad(A, refused)], [ok(A)], [bad(A, "HTTP 503: busy")], [ok(A)])
    used: list[object] = []

    def attempt(ident: object, probe: Probe, deadline: Deadline) -> Generator[Any, Any, Any]:
        used.append(ident)
        yield from ()
        return "done"

    disp = dispatcher(A, selector=sel, max_retries=1, signer_url=SIGNER, max_price=10.0)
    asks: list[str] = []

    def signer(step: Any) -> Reply:
        asks.append(step.url)
        return reply(200, fresh)

    (out, _), _ = drive(disp.select(CAP, None, attempt, Deadline(30.0)), signer)
    assert out == "done"
    assert asks == [f"{SIGNER}/sign-orchestrator-info"]
    assert [getattr(i, "address", None) for i in used] == [fresh["address"]]
    # Any other refusal keeps the identity: no signer call.
    asks.clear()
    used.clear()
    (out, _), _ = drive(disp.select(CAP, None, attempt, Deadline(30.0)), signer)
    assert (out, asks) == ("done", [])


def test_run_tries_one_free_orchestrator_before_probing() -> None:
    sel = ScriptedSelector([bad(A, "gone", reachable=False)])
    disp = dispatcher(A, selector=sel, max_retries=0)
    sent: list[str] = []

    def busy(step: Any) -> Reply:
        sent.append(f"{step.method} {step.url}")
        assert not sel.asked  # before any probe
        return reply(503, b"busy")

    info, _ = drive_raises(disp.execute(CAP, {"q": 1}, None, 5.0, False), NoOrchestratorError, busy)
    assert sent == [f"POST {A}/process/request/"]
    assert [(a["capability"], a["model"]) for a in sel.asked] == [(CAP, None)]
    assert [r.reason for r in info.value.rejections] == ["gone"]


def test_run_passes_the_route_and_checks_the_name(pauses: list[int]) -> None:
    sel = ScriptedSelector([bad(A, "gone", reachable=False)])
    disp = dispatcher(A, selector=sel, max_retries=0)
    drive_raises(disp.execute(CAP, {}, None, None, False, "app"), NoOrchestratorError)
    assert asked(sel, "route") == [("app",)]

    disp, sel = _unknown_dispatcher([nothing(A), nothing(B)])
    info, _ = drive_raises(
        disp.execute(CAP, {}, None, None, False),
        CapabilityError,
        _discovery_answer({A: ["x"], B: ["y"]}),
    )
    assert info.value.available == ("x", "y")


class StubRoute:
    """A route whose replies come from a list and whose ``classify`` says "repay" until repaid."""

    kind = "byoc"

    def __init__(self, *statuses: int, verdict: Callable[[bool], object]) -> None:
        self.statuses = list(statuses)
        self.forced: list[bool] = []
        self.classified: list[bool] = []
        self.verdict = verdict

    def attempt(
        self, signer: object, ident: object, probe: Probe, req: Request, *, force_payment: bool
    ) -> Generator[Any, Any, Reply]:
        self.forced.append(force_payment)
        if len(self.forced) > 5:
            raise AssertionError("the loop does not end")
        yield from ()
        return reply(self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0])

    def classify(self, reply: Reply, probe: Probe, req: Request, *, repaid: bool) -> object:
        self.classified.append(repaid)
        return self.verdict(repaid)


def _req() -> Request:
    return Request(CAP, None, {}, "rid-1", Deadline(30.0))


def test_request_repays_once_then_takes_the_routes_verdict() -> None:
    route = StubRoute(
        402, verdict=lambda repaid: Rejection(A, "still short") if repaid else "repay"
    )
    out, _ = drive(dispatch_mod._request(None, route, None, ok(A), _req()))  # type: ignore[arg-type]
    assert out == Rejection(A, "still short")
    assert route.forced == [False, True]
    assert route.classified == [False, True]


def test_request_success_after_repaying() -> None:
    route = StubRoute(402, 200, verdict=lambda repaid: "repay")
    out, _ = drive(dispatch_mod._request(None, route, None, ok(A), _req()))  # type: ignore[arg-type]
    assert out.status == 200
    assert route.forced == [False, True]


@pytest.mark.parametrize(("status", "success"), [(299, True), (300, False)])
def test_request_success_is_below_300(status: int, success: bool) -> None:
    route = StubRoute(status, verdict=lambda repaid: None)
    op = dispatch_mod._request(None, route, None, ok(A), _req())  # type: ignore[arg-type]
    if success:
        out, _ = drive(op)
        assert out.status == status
        assert route.classified == []
    else:
        # A 3xx is no success and not retryable: the common rule ends the call.
        with pytest.raises(APIStatusError) as info:
            drive(op)
        assert info.value.status_code == 300
        assert route.classified == [False]


# -- I/O providers ----------------------------------------------------------------------------------


def _pool(client: httpx.Client | httpx.AsyncClient) -> Any:
    return client._transport._pool  # type: ignore[union-attr]


def _orch_pool_ok(client: httpx.Client | httpx.AsyncClient) -> bool:
    """Orchestrator clients: certificates not verified (self-signed; gRPC pins them), HTTP/1.1, 32
    connections all kept alive."""
    pool = _pool(client)
    return bool(
        pool._ssl_context.verify_mode == ssl.CERT_NONE
        and pool._http2 is False
        and pool._max_connections == 32
        and pool._max_keepalive_connections == 32
    )


def test_orchestrator_clients_are_built_and_closed_with_the_gateway() -> None:
    gw = Gateway(orch_url=A)
    disp = gw._dispatch
    sync = disp.sync_io().orch
    assert disp.sync_io() is disp.sync_io()
    holder: list[Any] = []

    async def grab() -> None:
        first = disp.async_io()
        holder.append(first.orch)
        assert disp.async_io() is first  # same loop, same pool

    anyio.run(grab)
    (asyn,) = holder
    assert _orch_pool_ok(sync)
    assert _orch_pool_ok(asyn)
    service = disp._service_client()
    assert _pool(service)._max_keepalive_connections == 32
    gw.close()
    assert sync.is_closed
    assert asyn.is_closed
    assert service.is_closed


def test_a_user_client_is_used_for_everything() -> None:
    user = httpx.Client()
    disp = Gateway(orch_url=A, http_client=user)._dispatch
    io = disp.sync_io()
    assert io.orch is user
    assert disp.release() == []
    user.close()


def test_closing_the_gateway_closes_its_grpc_channels() -> None:
    gw = Gateway(orch_url=A)
    chan = gw._dispatch._info._channel("http://127.0.0.1:9", 1.0)  # plain gRPC: no I/O until a call
    gw.close()
    with pytest.raises(ValueError, match="closed channel"):
        chan.unary_unary("/net.Orchestrator/GetOrchestrator")(b"", timeout=0.5)
