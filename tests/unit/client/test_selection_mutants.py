"""Selection rules the mutation run (scripts/mutate.py selection) found unpinned, against loopback orchestrators."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from livepeer.client import Gateway, _selection
from livepeer.client._discovery import Candidate
from livepeer.client._io import drive
from livepeer.client._ops import Deadline, Parallel
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
