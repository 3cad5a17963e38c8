"""Choosing orchestrators: bounded parallel probes, a per-(orchestrator, capability) cache, ranking.

Ranking is health first (known free capacity before unknown), then price, then probe latency.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._discovery import Candidate
from ._errors import LivepeerError, Rejection
from ._ops import Call, Deadline, InfoCall, Op, Parallel, Race, Reply, Wait, gather, race
from ._route import Probe
from ._routes import ROUTES, apps, routes_for
from ._signer import Identity

__all__ = ["Selector", "rank"]

log = logging.getLogger("livepeer.client")
PROBE_TIMEOUT = 2.0
# Capacities above this are not a real orchestrator's (go-livepeer counts concurrent sessions).
MAX_CAPACITY = 100_000
# As wide as the connection pool (32, _dispatch.Dispatcher._limits): a cold call with many discovered orchestrators
# waits for probe waves, not CPU. Measured on the devnet with 50 orchestrators, fresh Gateway, interleaved:
# 8 in flight 1081 ms, 16 548 ms, 50 566 ms (median of 4 rounds; bench/run.py has the scaling table).
PROBE_CONCURRENCY = 32
OK_TTL = 30.0
FAIL_TTL = 5.0
# First good answer wins (issue 17): a cold call with more than RACE_MIN candidates to probe returns at the
# first usable answer and leaves the rest to finish in the background into the cache (later calls rank them
# all); up to RACE_MIN are one wave and all awaited (a small set is ranked whole). RACE_FIRST probes start at
# once, the next as one ends, and the number in flight doubles every RACE_WIDEN_AFTER without a usable answer,
# up to PROBE_CONCURRENCY (a hedge against slow or hung peers). Measured on the devnet (50 orchestrators in
# one process sharing 2 loaded cores with the client), fresh Gateway per call, median ms: all awaited 476;
# a first wave of 4: 122, of 2: 88, of 1: 57 (8 interleaved rounds); one orchestrator: 41. Per phase (6
# alternating calls): with 2 in flight the winning call took 25-100 ms behind the second probe's TLS
# handshake, with 1 in flight 10-20 ms, as with one orchestrator.
RACE_MIN = 4
# The default of Selector(first_wins=...): on, since the dispatcher's loop waits for the probes still
# running before it gives up a round (Dispatcher.select; docs/decisions.md D-perf-3).
FIRST_WINS = True
RACE_FIRST = 1
RACE_WIDEN_AFTER = 0.05
# Probes left after the race go on one at a time: less contention with the call that won, and a Gateway
# closed right after its first call has at most one probe in flight to end.
RACE_BACKGROUND = 1


def rank(probes: Sequence[Probe], max_price: float | None) -> tuple[list[Probe], list[Rejection]]:
    """Usable probes in preference order, plus a rejection for every unusable one."""
    usable: list[Probe] = []
    rejected: list[Rejection] = []
    for p in probes:
        insane = _insane(p) if p.ok else None
        if not p.ok:
            rejected.append(Rejection(p.url, p.reason or "probe failed"))
        elif insane:
            rejected.append(Rejection(p.url, insane))
        elif max_price is not None and p.price > max_price:
            rejected.append(
                Rejection(p.url, f"price {p.price:g} wei/unit above max_price {max_price:g}")
            )
        else:
            usable.append(p)
    usable.sort(key=lambda p: (0 if p.capacity else 1, p.price, p.latency))
    return usable, rejected


def _insane(p: Probe) -> str | None:
    """Why a probe's numbers cannot be believed (NaN/negative prices must never win the ranking)."""
    if not isinstance(p.price, (int, float)) or not math.isfinite(p.price) or p.price < 0:
        return f"advertised an invalid price ({p.price!r})"
    if p.capacity is not None and (
        not isinstance(p.capacity, int) or not 0 <= p.capacity <= MAX_CAPACITY
    ):
        return f"advertised an invalid capacity ({p.capacity!r})"
    if p.balance is not None and (
        not isinstance(p.balance, (int, float)) or not math.isfinite(p.balance)
    ):
        return f"advertised an invalid balance ({p.balance!r})"
    return None


def _read(
    kind: str, url: str, capability: str, model: str | None, r: Reply | LivepeerError
) -> Probe:
    """Any reply an orchestrator can send is a Probe: a parser bug or odd input is a rejection."""
    try:
        return ROUTES[kind].read_probe(url, capability, model, r)
    except LivepeerError as exc:
        return Probe(url, kind, ok=False, reason=str(exc))
    except Exception as exc:  # hostile input must not escape selection untyped
        log.debug("malformed probe reply from %s: %r", url, exc)
        return Probe(url, kind, ok=False, reason=f"malformed reply ({type(exc).__name__})")


@dataclass(frozen=True)
class _Key:
    url: str
    capability: str
    model: str | None
    route: str | None = None


class Selector:
    """Probe cache and selection for one Gateway (thread-safe; shared by sync and async calls)."""

    def __init__(
        self,
        *,
        ok_ttl: float = OK_TTL,
        fail_ttl: float = FAIL_TTL,
        first_wins: bool | None = None,
    ) -> None:
        self.ok_ttl = ok_ttl
        # With first_wins off every probe is awaited (the caller need not handle pending placeholders).
        self.first_wins = FIRST_WINS if first_wins is None else first_wins
        self.fail_ttl = fail_ttl
        self._cache: dict[_Key, Probe] = {}
        self._lock = threading.Lock()
        self._flights: dict[_Key, threading.Event] = {}

    def _fresh(self, key: _Key, now: float) -> Probe | None:
        with self._lock:
            p = self._cache.get(key)
        if p is None:
            return None
        ttl = self.ok_ttl if p.ok else self.fail_ttl
        return p if now - p.created < ttl else None

    def cached(
        self, url: str, capability: str, model: str | None, route: str | None = None
    ) -> bool:
        return self._fresh(_Key(url, capability, model, route), time.monotonic()) is not None

    def store(
        self, probe: Probe, capability: str, model: str | None, route: str | None = None
    ) -> None:
        with self._lock:
            self._cache[_Key(probe.url, capability, model, route)] = probe

    def mark_failed(
        self,
        probe: Probe,
        capability: str,
        model: str | None,
        reason: str,
        route: str | None = None,
    ) -> None:
        """Remember a failed call so the next request does not start with this orchestrator."""
        failed = Probe(probe.url, probe.kind, ok=False, reason=reason, reachable=False)
        self.store(failed, capability, model, route)

    def forget(
        self, url: str, capability: str, model: str | None, route: str | None = None
    ) -> None:
        with self._lock:
            self._cache.pop(_Key(url, capability, model, route), None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def probe(
        self,
        candidates: Sequence[Candidate],
        capability: str,
        model: str | None,
        ident: Identity,
        deadline: Deadline,
        *,
        retry_failed: bool = False,
        route: str | None = None,
        max_price: float | None = None,
        first_wins: bool | None = None,
    ) -> Op[list[Probe]]:
        """Probe the candidates not in the cache (in parallel, bounded); a probe for every candidate.

        First good answer wins: with more than ``RACE_MIN`` to probe, this returns as soon as one usable answer arrived
        (``rank``'s rules, ``max_price`` included); a candidate still being probed then has a placeholder
        that is not ``ok`` (reason "probe still running") and its probe lands in the cache when it ends.
        Only with ``first_wins`` (default: the Selector's): a caller that has tried every usable probe
        must then call ``probe`` again (it waits for the running ones) before it gives up the round.

        ``retry_failed`` re-probes candidates whose cached probe failed (a new retry round).
        ``route`` (docs/client.md "Routing"): ``None`` = BYOC first, a live-runner app only when named
        exactly or when the orchestrator has no BYOC capability of that name; ``"byoc"`` / ``"app"`` = only that.
        """
        now = time.monotonic()
        chain = routes_for(capability, route)
        kind = chain[0].kind
        probes: dict[str, Probe] = {}
        todo: list[Candidate] = []
        for c in candidates:
            cached = self._fresh(_Key(c.url, capability, model, route), now)
            if cached is not None and (cached.ok or not retry_failed):
                probes[c.url] = cached
                continue
            runner = None
            if apps.ROUTE in chain:
                # A runner the discovery listing (the signer's) already names needs no probe.
                runner = apps.find_runner(c.runners, capability, model)
                if (
                    route is None
                    and runner is not None
                    and not apps.names_exactly(runner, capability, model)
                ):
                    runner = None  # a prefix match only: BYOC is probed first (billing model)
            if runner is not None:
                p = apps.probe_from_runner(c.url, runner)
                self.store(p, capability, model, route)
                probes[c.url] = p
            else:
                todo.append(c)
        # Single flight: concurrent callers wait for a probe already running instead of repeating it.
        waiting: list[tuple[Candidate, threading.Event]] = []
        mine: list[tuple[Candidate, threading.Event]] = []
        with self._lock:
            for c in todo:
                key = _Key(c.url, capability, model, route)
                flight = self._flights.get(key)
                if flight is None:
                    self._flights[key] = ev = threading.Event()
                    mine.append((c, ev))
                else:
                    waiting.append((c, flight))
        # Probes that lost the race release their flight themselves when they land (or are dropped).
        background: set[str] = set()
        race = self.first_wins if first_wins is None else first_wins
        try:
            yield from self._probe_now(
                [c for c, _ in mine], capability, model, ident, deadline, kind, probes, route,
                max_price, background if race else None, {c.url: ev for c, ev in mine},
            )  # fmt: skip
        finally:
            for c, ev in mine:
                if c.url not in background:
                    self._land(_Key(c.url, capability, model, route), ev, None)
        if waiting and any(_usable(p, max_price) for p in probes.values()):
            # Someone else's probes are still out, but a usable answer is here: do not wait for them.
            for c, _ in waiting:
                probes[c.url] = _running(c.url, kind)
            waiting = []
        if waiting:
            yield Wait([ev for _, ev in waiting], deadline.cap(PROBE_TIMEOUT * 2))
            for c, _ in waiting:
                done = self._fresh(_Key(c.url, capability, model, route), time.monotonic())
                probes[c.url] = done or Probe(c.url, kind, ok=False, reason="probe did not finish")
        return [probes[c.url] for c in candidates]

    def _land(self, key: _Key, flight: threading.Event, probe: Probe | None) -> None:
        """A probe finished (``None``: it gave no answer worth caching): cache it, release its flight."""
        with self._lock:
            if probe is not None:
                self._cache[key] = probe
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.set()

    def _probe_now(
        self,
        todo: list[Candidate],
        capability: str,
        model: str | None,
        ident: Identity,
        deadline: Deadline,
        kind: str,
        probes: dict[str, Probe],
        route: str | None = None,
        max_price: float | None = None,
        background: set[str] | None = None,
        flights: dict[str, threading.Event] | None = None,
    ) -> Op[None]:
        if not todo:
            return
        # The name's first route, then (a BYOC name, route=None) a live-runner app of that name where the
        # BYOC probe found nothing usable (docs/client.md "Routing").
        first, *fallback = routes_for(capability, route)
        timeout = deadline.cap(PROBE_TIMEOUT)
        calls: list[Call | InfoCall] = [
            first.probe_call(c.url, capability, model, ident, timeout) for c in todo
        ]
        results: list[Reply | LivepeerError | None]
        # Up to RACE_MIN candidates are one wave in flight together: all are awaited, so a small
        # set is ranked whole (waiting for all costs about one round trip more than the first).
        if len(todo) > RACE_MIN and background is not None and flights is not None:
            results = yield from self._race(
                todo, calls, capability, model, kind, route, max_price, timeout, background,
                flights, probes,
            )  # fmt: skip
        else:
            results = list((yield from gather(Parallel(calls, PROBE_CONCURRENCY))))
        second: list[Candidate] = []
        for c, res in zip(todo, results, strict=True):
            if res is None:
                continue  # still running: its placeholder is in ``probes``
            p = _read(kind, c.url, capability, model, res)
            if fallback and not p.ok and p.reachable:
                second.append(c)
            probes[c.url] = p
        if second:
            # Not a usable BYOC capability there: maybe a live-runner app of that name.
            timeout = deadline.cap(PROBE_TIMEOUT)
            found = yield from gather(
                Parallel([apps.probe_call(c.url, timeout) for c in second], PROBE_CONCURRENCY)
            )
            for c, r in zip(second, found, strict=True):
                p_app = _read_app(c.url, capability, model, r)
                if p_app is not None:
                    probes[c.url] = p_app
        for c in todo:
            if c.url not in (background or ()):
                self.store(probes[c.url], capability, model, route)

    def _race(
        self,
        todo: list[Candidate],
        calls: list[Call | InfoCall],
        capability: str,
        model: str | None,
        kind: str,
        route: str | None,
        max_price: float | None,
        timeout: float,
        background: set[str],
        flights: dict[str, threading.Event],
        probes: dict[str, Probe],
    ) -> Op[list[Reply | LivepeerError | None]]:
        """``Race`` the probes; fill ``background`` with the candidates whose probes go on without us."""

        def enough(i: int, r: Reply | LivepeerError) -> bool:
            return _usable(_read(kind, todo[i].url, capability, model, r), max_price)

        def late(i: int, r: Reply | LivepeerError) -> None:
            url = todo[i].url
            p = _read(kind, url, capability, model, r)
            if len(routes_for(capability, route)) > 1 and not p.ok and p.reachable:
                # It needs the live-runner-app follow-up a foreground probe gets: the next call probes it.
                self._land(_Key(url, capability, model, route), flights[url], None)
                return
            self._land(_Key(url, capability, model, route), flights[url], p)

        def drop(i: int) -> None:
            url = todo[i].url
            self._land(_Key(url, capability, model, route), flights[url], None)

        results = yield from race(Race(
            calls, PROBE_CONCURRENCY, enough=enough, late=late, drop=drop, timeout=timeout,
            first=RACE_FIRST, widen_after=RACE_WIDEN_AFTER, background=RACE_BACKGROUND,
        ))  # fmt: skip
        for c, r in zip(todo, results, strict=True):
            if r is None:
                background.add(c.url)
                probes[c.url] = _running(c.url, kind)
        return results


def _usable(p: Probe, max_price: float | None) -> bool:
    return bool(rank([p], max_price)[0])


def _running(url: str, kind: str) -> Probe:
    # Not ok, so never ranked; "offers" unknown, so it cannot make a capability look absent.
    return Probe(url, kind, ok=False, reason="probe still running", offers=True, pending=True)


def _read_app(
    url: str, capability: str, model: str | None, r: Reply | LivepeerError
) -> Probe | None:
    try:
        return apps.read_probe(url, capability, model, r)
    except Exception as exc:  # a malformed /discovery is "no such app here"
        log.debug("malformed /discovery reply from %s: %r", url, exc)
        return None
