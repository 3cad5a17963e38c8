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
from ._ops import Call, Deadline, InfoCall, Op, Parallel, Reply, Wait, gather
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

    def __init__(self, *, ok_ttl: float = OK_TTL, fail_ttl: float = FAIL_TTL) -> None:
        self.ok_ttl = ok_ttl
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
    ) -> Op[list[Probe]]:
        """Probe every candidate not in the cache (in parallel, bounded); return all probes.

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
        mine: list[Candidate] = []
        with self._lock:
            for c in todo:
                key = _Key(c.url, capability, model, route)
                flight = self._flights.get(key)
                if flight is None:
                    self._flights[key] = threading.Event()
                    mine.append(c)
                else:
                    waiting.append((c, flight))
        try:
            yield from self._probe_now(
                mine, capability, model, ident, deadline, kind, probes, route
            )
        finally:
            with self._lock:
                for c in mine:
                    self._flights.pop(_Key(c.url, capability, model, route)).set()
        if waiting:
            yield Wait([ev for _, ev in waiting], deadline.cap(PROBE_TIMEOUT * 2))
            for c, _ in waiting:
                done = self._fresh(_Key(c.url, capability, model, route), time.monotonic())
                probes[c.url] = done or Probe(c.url, kind, ok=False, reason="probe did not finish")
        return [probes[c.url] for c in candidates]

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
        results = yield from gather(Parallel(calls, PROBE_CONCURRENCY))
        second: list[Candidate] = []
        for c, r in zip(todo, results, strict=True):
            p = _read(first.kind, c.url, capability, model, r)
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
            self.store(probes[c.url], capability, model, route)


def _read_app(
    url: str, capability: str, model: str | None, r: Reply | LivepeerError
) -> Probe | None:
    try:
        return apps.read_probe(url, capability, model, r)
    except Exception as exc:  # a malformed /discovery is "no such app here"
        log.debug("malformed /discovery reply from %s: %r", url, exc)
        return None
