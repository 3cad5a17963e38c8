"""Selection rules the mutation run (scripts/mutate.py selection) found unpinned, against loopback orchestrators."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from livepeer.client import Gateway, _selection
from livepeer.client._discovery import Candidate
from livepeer.client._io import drive
from livepeer.client._ops import Call, Deadline, InfoCall, Parallel, Reply, Wait
from livepeer.client._routes import Probe, route_kind
from livepeer.client._selection import Selector, rank
from livepeer.client._signer import ZERO_ADDRESS, Identity

Start = Callable[[int], list[Any]]
ZERO = Identity(ZERO_ADDRESS, "0x")


def probe(url: str, *, ok: bool = True, price: float = 0, capacity: int | None = 1) -> Probe:
    return Probe(url, "byoc", ok=ok, price=price, capacity=capacity, reason="" if ok else "down")


def test_price_equal_to_max_price_is_accepted() -> None:
    usable, rejected = rank([probe("a", price=10), probe("b", price=10.5)], 10)
    assert [p.url for p in usable] == ["a"]
    assert [(r.orchestrator, r.reason) for r in rejected] == [
        ("b", "price 10.5 wei/unit above max_price 10")
    ]
    usable, rejected = rank([probe("a", price=0)], 0)
    assert [p.url for p in usable] == ["a"]
    assert rank([probe("x", ok=False)], None)[1][0].reason == "down"
    assert rank([Probe("y", "byoc", ok=False)], None)[1][0].reason == "probe failed"


def test_route_kind() -> None:
    assert route_kind("text-to-image") == "ai"
    assert route_kind("my-byoc-cap") == "byoc"


def test_cache_entries_expire_exactly_at_their_ttl() -> None:
    sel = Selector()
    assert (sel.ok_ttl, sel.fail_ttl) == (30.0, 5.0)
    ok = probe("a")
    sel.store(ok, "cap", None)
    key = next(iter(sel._cache))
    assert sel._fresh(key, ok.created + 29.9) is ok
    assert sel._fresh(key, ok.created + 30.0) is None
    bad = probe("b", ok=False)
    sel.store(bad, "cap", "m")
    bkey = next(k for k in sel._cache if k.url == "b")
    assert sel._fresh(bkey, bad.created + 4.9) is bad
    assert sel._fresh(bkey, bad.created + 5.0) is None


def test_cached_forget_clear_and_mark_failed() -> None:
    sel = Selector()
    sel.store(probe("a"), "cap", None)
    sel.store(probe("b"), "cap", None)
    assert sel.cached("a", "cap", None)
    assert not sel.cached("a", "cap", "model")
    assert not sel.cached("c", "cap", None)
    sel.mark_failed(probe("a", price=3), "cap", None, "HTTP 503: busy")
    failed = sel._cache[next(k for k in sel._cache if k.url == "a")]
    assert (failed.ok, failed.reason, failed.reachable, failed.kind) == (
        False,
        "HTTP 503: busy",
        False,
        "byoc",
    )
    sel.forget("a", "cap", None)
    assert not sel.cached("a", "cap", None)
    assert sel.cached("b", "cap", None)
    sel.forget("a", "cap", None)  # twice is fine
    sel.clear()
    assert not sel.cached("b", "cap", None)


def test_probe_calls_are_bounded_in_time_and_concurrency() -> None:
    sel = Selector()
    op = sel.probe(
        [Candidate(f"https://o{i}.example:1") for i in range(10)],
        "text-to-image",
        None,
        ZERO,
        Deadline(60),
    )
    step = next(op)
    op.close()
    assert isinstance(step, Parallel)
    assert step.limit == _selection.PROBE_CONCURRENCY == 32
    assert [c.timeout for c in step.calls] == [2.0] * 10
    # Bounded by the overall deadline too.
    step = next(
        Selector().probe([Candidate("https://o.example:1")], "cap", None, ZERO, Deadline(1))
    )
    assert 0 < step.calls[0].timeout <= 1


def _probe(gw: Gateway, sel: Selector, orchs: list[Any], **kw: Any) -> list[Probe]:
    cands = [Candidate(o.url) for o in orchs]
    result: list[Probe] = drive(
        sel.probe(cands, "text-reversal", None, ZERO, Deadline(30), **kw), gw._dispatch.sync_io()
    )
    return result


def test_failed_probes_are_reused_unless_a_retry_round_asks(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    sel = Selector()
    with Gateway(orch_url=orch.url) as gw:
        (first,) = _probe(gw, sel, [orch])
        assert first.ok
        assert orch.token_calls == 1
        assert _probe(gw, sel, [orch])[0] is first  # fresh and ok: cached
        sel.mark_failed(first, "text-reversal", None, "boom")
        (again,) = _probe(gw, sel, [orch])
        assert (again.ok, again.reason, orch.token_calls) == (False, "boom", 1)
        (retried,) = _probe(gw, sel, [orch], retry_failed=True)
        assert retried.ok
        assert orch.token_calls == 2
        assert _probe(gw, sel, [orch], retry_failed=True)[0] is retried  # ok entries stay cached
        assert orch.token_calls == 2


def test_every_candidate_gets_a_probe_in_candidate_order(fake_orchs: Start) -> None:
    a, b, c = fake_orchs(3)
    b.capabilities = {}
    sel = Selector()
    with Gateway(orch_url=a.url) as gw:
        probes = _probe(gw, sel, [c, b, a])
    assert [p.url for p in probes] == [c.url, b.url, a.url]
    assert [p.ok for p in probes] == [True, False, True]
    assert (a.token_calls, b.token_calls, c.token_calls) == (1, 1, 1)
    for o in (a, b, c):
        assert sel.cached(o.url, "text-reversal", None)


def test_runner_listed_by_discovery_needs_no_probe(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    runner = {"app": "text-reversal", "url": orch.url + "/apps/x/app", "capacity_available": 2}
    sel = Selector()
    cand = Candidate(orch.url, runners=(runner,))
    with Gateway(orch_url=orch.url) as gw:
        (p,) = drive(
            sel.probe([cand], "text-reversal", None, ZERO, Deadline(30)), gw._dispatch.sync_io()
        )
    assert (p.kind, p.ok, p.capacity) == ("apps", True, 2)
    assert orch.token_calls == 0
    assert sel.cached(orch.url, "text-reversal", None)
    # An AI capability never looks at runners.
    with Gateway(orch_url=orch.url) as gw:
        cand = Candidate(orch.url, runners=({**runner, "app": "text-to-image"},))
        op = sel.probe([cand], "text-to-image", None, ZERO, Deadline(30))
        assert isinstance(next(op), Parallel)
        op.close()


def test_concurrent_probes_share_one_flight(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    sel = Selector()
    results: list[Probe] = []
    with Gateway(orch_url=orch.url) as gw:
        # The leader's op is paused right after yielding its probe: a second caller must wait for it.
        leader = sel.probe([Candidate(orch.url)], "text-reversal", None, ZERO, Deadline(30))
        step = next(leader)
        io = gw._dispatch.sync_io()

        def follower() -> None:
            results.extend(_probe(gw, sel, [orch]))

        t = threading.Thread(target=follower)
        t.start()
        reply = io.run(step)
        with pytest.raises(StopIteration) as done:
            leader.send(reply)
        t.join(30)
    assert done.value.value[0].ok
    assert results[0].ok
    assert orch.token_calls == 1


# ----------------------------------------------------------------------------------------------------------
# Numbers no real orchestrator advertises: rejected with the reason, whatever max_price says, so that a NaN
# or negative price can never sort first.


def test_invalid_prices_are_rejected_before_the_price_cap() -> None:
    nan, inf = float("nan"), float("inf")
    probes = [
        probe("nan", price=nan),
        probe("inf", price=inf),
        probe("-inf", price=-inf),
        probe("negative", price=-1),
        probe("text", price="3"),  # type: ignore[arg-type]  # what a parser bug could hand over
        probe("zero", price=0),
        probe("minus-zero", price=-0.0),
    ]
    for max_price in (None, 10.0):
        usable, rejected = rank(probes, max_price)
        assert [p.url for p in usable] == ["zero", "minus-zero"]
        assert [(r.orchestrator, r.reason) for r in rejected] == [
            ("nan", "advertised an invalid price (nan)"),
            ("inf", "advertised an invalid price (inf)"),
            ("-inf", "advertised an invalid price (-inf)"),
            ("negative", "advertised an invalid price (-1)"),
            ("text", "advertised an invalid price ('3')"),
        ]
    # A failed probe keeps its own reason, however odd its numbers.
    (failed,) = rank([probe("down", ok=False, price=nan)], None)[1]
    assert failed.reason == "down"


def test_invalid_capacities_are_rejected_and_the_bounds_are_inclusive() -> None:
    assert _selection.MAX_CAPACITY == 100_000
    probes = [
        probe("negative", capacity=-1),
        probe("huge", capacity=100_001),
        probe("fraction", capacity=2.5),  # type: ignore[arg-type]
        probe("max", capacity=100_000, price=2),
        probe("unknown", capacity=None, price=1),
        probe("none-free", capacity=0),
    ]
    usable, rejected = rank(probes, None)
    # Known free capacity first, then the rest by price.
    assert [p.url for p in usable] == ["max", "none-free", "unknown"]
    assert [(r.orchestrator, r.reason) for r in rejected] == [
        ("negative", "advertised an invalid capacity (-1)"),
        ("huge", "advertised an invalid capacity (100001)"),
        ("fraction", "advertised an invalid capacity (2.5)"),
    ]


def test_invalid_balances_are_rejected() -> None:
    def with_balance(url: str, balance: object) -> Probe:
        return Probe(url, "byoc", ok=True, capacity=1, balance=balance)  # type: ignore[arg-type]

    probes = [
        with_balance("nan", float("nan")),
        with_balance("inf", float("inf")),
        with_balance("text", "5"),
        with_balance("none", None),
        with_balance("negative", -2.0),  # a debt is a real balance
        with_balance("int", 7),
    ]
    usable, rejected = rank(probes, None)
    assert [p.url for p in usable] == ["none", "negative", "int"]
    assert [(r.orchestrator, r.reason) for r in rejected] == [
        ("nan", "advertised an invalid balance (nan)"),
        ("inf", "advertised an invalid balance (inf)"),
        ("text", "advertised an invalid balance ('5')"),
    ]


def _ai_probe(body: bytes) -> Probe:
    """Probe one AI orchestrator whose GetOrchestrator answer is ``body`` (the caller plays the network)."""
    url = "https://o.example:1"
    op = Selector().probe([Candidate(url)], "text-to-image", None, ZERO, Deadline(30))
    step = next(op)
    assert isinstance(step, Parallel)
    with pytest.raises(StopIteration) as done:
        op.send([Reply(200, {}, body, url, 0.01)])
    (p,) = done.value.value
    assert isinstance(p, Probe)
    return p


def test_ai_orchestrator_with_a_negative_price_never_wins() -> None:
    from livepeer.client._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo(transcoder="https://o.example:1")
    info.price_info.pricePerUnit = -6
    info.price_info.pixelsPerUnit = 2
    p = _ai_probe(info.SerializeToString())
    usable, rejected = rank([p, probe("honest", price=5)], 10)
    assert [u.url for u in usable] == ["honest"]
    assert [(r.orchestrator, r.reason) for r in rejected] == [
        ("https://o.example:1", "advertised an invalid price (-3.0)")
    ]


def test_a_reply_that_breaks_the_parser_is_a_rejection_not_an_exception(fake_orchs: Start) -> None:
    # 10**400 is valid JSON but no float: the token check raises OverflowError, which selection must turn
    # into a failed probe, never let out of Gateway calls untyped.
    bad, good = fake_orchs(2)
    bad.price = 10**400
    sel = Selector()
    with Gateway(orch_url=good.url) as gw:
        first, second = _probe(gw, sel, [bad, good])
        assert (first.ok, first.kind, first.reason) == (
            False,
            "byoc",
            "malformed reply (OverflowError)",
        )
        assert second.ok
    usable, rejected = rank([first, second], None)
    assert [p.url for p in usable] == [good.url]
    assert [(r.orchestrator, r.reason) for r in rejected] == [
        (bad.url, "malformed reply (OverflowError)")
    ]


def test_an_explicit_app_route_asks_discovery_only(fake_orchs: Start, dead_url: str) -> None:
    with_app, without_app = fake_orchs(2)
    with_app.runners = [{"app": "text-reversal", "url": "/apps/x/app", "capacity_available": 3}]
    sel = Selector()
    cands = [Candidate(with_app.url), Candidate(without_app.url), Candidate(dead_url)]
    with Gateway(orch_url=with_app.url) as gw:
        app, none, dead = drive(
            sel.probe(cands, "text-reversal", None, ZERO, Deadline(30), route="app"),
            gw._dispatch.sync_io(),
        )
    assert (app.kind, app.ok, app.capacity) == ("apps", True, 3)
    assert app.runner is not None
    assert app.runner["url"] == with_app.url + "/apps/x/app"
    # No such app: a rejection that says so, from an orchestrator that answered ...
    want = ("apps", False, "no live-runner app 'text-reversal'", False)
    assert (none.kind, none.ok, none.reason, none.offers) == want
    assert none.reachable
    # ... or from one that did not answer at all.
    assert (dead.kind, dead.ok, dead.reason, dead.offers) == ("apps", *want[1:])
    assert not dead.reachable
    assert with_app.token_calls == without_app.token_calls == 0  # never a BYOC token request
    for c in cands:  # every answer is cached, under the route it was asked for
        assert sel.cached(c.url, "text-reversal", None, "app")
        assert not sel.cached(c.url, "text-reversal", None)


# ----------------------------------------------------------------------------------------------------------
# Which probe each candidate gets (BYOC token, live-runner app, GetOrchestrator), observed as the calls the
# probe op asks for and the probes it returns.


def test_ai_capabilities_ask_get_orchestrator_and_byoc_asks_for_a_token() -> None:
    url = "https://o.example:1"
    ai_step = next(Selector().probe([Candidate(url)], "text-to-image", None, ZERO, Deadline(30)))
    byoc_step = next(Selector().probe([Candidate(url)], "my-cap", None, ZERO, Deadline(30)))
    assert isinstance(ai_step, Parallel)
    assert isinstance(byoc_step, Parallel)
    (ai_call,) = ai_step.calls
    (byoc_call,) = byoc_step.calls
    assert isinstance(ai_call, InfoCall)
    assert ai_call.url == url
    assert isinstance(byoc_call, Call)
    assert (byoc_call.method, byoc_call.url) == ("GET", url + "/process/token")


def test_a_failed_ai_probe_does_not_look_for_a_live_runner_app() -> None:
    from livepeer.client._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo(transcoder="https://o.example:1")
    info.capabilities.capacities[999] = 1  # capabilities, but not text-to-image's
    p = _ai_probe(info.SerializeToString())  # returns at once: no second (discovery) round
    assert (p.ok, p.reason, p.reachable) == (False, "does not offer text-to-image", True)


def test_a_cached_candidate_does_not_stop_the_others_being_probed(fake_orchs: Start) -> None:
    a, b = fake_orchs(2)
    sel = Selector()
    with Gateway(orch_url=a.url) as gw:
        (first,) = _probe(gw, sel, [a])
        pa, pb_ = _probe(gw, sel, [a, b])
    assert pa is first
    assert (pb_.url, pb_.ok) == (b.url, True)
    assert (a.token_calls, b.token_calls) == (1, 1)


def test_route_byoc_ignores_listed_runners_and_prefix_runners_wait_for_byoc(
    fake_orchs: Start,
) -> None:
    (orch,) = fake_orchs(1)
    exact = {"app": "text-reversal", "url": "/apps/x/app", "capacity_available": 2}
    prefix = {**exact, "app": "text-reversal/some-model"}
    sel = Selector()
    with Gateway(orch_url=orch.url) as gw:

        def one(runner: dict[str, Any], route: str | None) -> Probe:
            cand = Candidate(orch.url, runners=(runner,))
            op = sel.probe([cand], "text-reversal", None, ZERO, Deadline(30), route=route)
            (p,) = drive(op, gw._dispatch.sync_io())
            return p

        # route="byoc": the BYOC token, even with an app of that exact name listed.
        assert (one(exact, "byoc").kind, orch.token_calls) == ("byoc", 1)
        # No route and only a "pipeline/model" app: BYOC is asked first (it bills differently).
        assert (one(prefix, None).kind, orch.token_calls) == ("byoc", 2)
        # route="app" takes the listed prefix runner without asking anything.
        p = one(prefix, "app")
        assert (p.kind, p.ok, p.capacity, orch.token_calls) == ("apps", True, 2, 2)


def test_byoc_falls_back_to_a_live_runner_app_unless_route_byoc(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.capabilities = {}  # no BYOC capability of that name ...
    orch.runners = [{"app": "text-reversal", "url": "/apps/x/app", "capacity_available": 1}]
    with Gateway(orch_url=orch.url) as gw:
        (p,) = _probe(gw, Selector(), [orch])  # ... but /discovery lists an app: use it
        assert (p.kind, p.ok, p.capacity) == ("apps", True, 1)
        (p,) = _probe(gw, Selector(), [orch], route="byoc")
        assert (p.kind, p.ok) == ("byoc", False)
        assert p.reason == "no capacity for 'text-reversal' (or not offered)"
    assert orch.token_calls == 2


def test_a_follower_waits_a_bounded_time_for_a_shared_probe() -> None:
    # Two callers probe the same orchestrator: the second waits for the first's probe (single flight), at
    # most twice the probe timeout and never past its own deadline; if it does not finish it is a failure.
    sel = Selector()
    cand = Candidate("https://o.example:1")
    leader = sel.probe([cand], "my-cap", None, ZERO, Deadline(30))
    assert isinstance(next(leader), Parallel)
    follower = sel.probe([cand], "my-cap", None, ZERO, Deadline(30))
    wait = next(follower)
    assert isinstance(wait, Wait)
    assert wait.timeout == 2 * _selection.PROBE_TIMEOUT == 4.0
    with pytest.raises(StopIteration) as done:
        follower.send(None)  # the wait ended without the leader's probe
    (p,) = done.value.value
    assert (p.url, p.kind, p.ok, p.reason) == (cand.url, "byoc", False, "probe did not finish")
    short = next(sel.probe([cand], "my-cap", None, ZERO, Deadline(1)))
    assert isinstance(short, Wait)
    assert 0 < short.timeout <= 1
    leader.close()
