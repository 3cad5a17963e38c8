"""Select-and-start for live routes: the run verbs' selection policy with a route's own start attempt."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from livepeer.client import _telemetry as telemetry
from livepeer.client._errors import APIStatusError, NoOrchestratorError, Rejection
from livepeer.client._http import Deadline, Op, Reply, Sleep, backoff, is_retryable_status
from livepeer.client._routes import Probe
from livepeer.client._selection import rank
from livepeer.client._signer import Identity

if TYPE_CHECKING:
    from livepeer.client._gateway import Gateway

__all__ = ["failed_start", "start_with_failover"]

T = TypeVar("T")

# (identity, ranked probe, overall deadline) -> the started job, or why this orchestrator was skipped.
Attempt = Callable[[Identity, Probe, Deadline], Op["T | Rejection"]]


def start_with_failover(
    gw: Gateway, capability: str, model: str | None, attempt: Attempt[T]
) -> Op[T]:
    """Candidates, parallel probes, ranking and ``max_price`` as for ``run``; try each usable
    orchestrator in rank order, retry rounds with backoff, and list every rejection if none starts."""
    core = gw._core
    deadline = Deadline(gw.settings.timeout)
    ident: Identity = yield from core.signer.identity()
    candidates, rejections = yield from core.candidates()
    if not candidates:
        raise NoOrchestratorError(capability, rejections)
    last: dict[str, str] = {}
    for rnd in range(gw.settings.max_retries + 1):
        if rnd:
            yield Sleep(deadline.cap(backoff(rnd - 1)))
        probes = yield from core.selector.probe(candidates, capability, model, ident, deadline)
        usable, rejected = rank(probes, gw.settings.max_price)
        for r in rejected:
            last[r.orchestrator] = r.reason
        for probe in usable:
            with telemetry.attempt_span(probe.url, probe.kind) as span:
                outcome = yield from attempt(ident, probe, deadline)
                if isinstance(outcome, Rejection):
                    span.set(
                        {"livepeer.failover.reason": outcome.reason[:200], "error.type": "rejected"}
                    )
            if not isinstance(outcome, Rejection):
                return outcome
            last[outcome.orchestrator] = outcome.reason
            core.selector.mark_failed(probe, capability, model, outcome.reason)
        if deadline.remaining() <= 0:
            break
    raise NoOrchestratorError(
        capability, [Rejection(c.url, last.get(c.url, "not tried")) for c in candidates]
    )


def failed_start(reply: Reply, probe: Probe, request_id: str) -> Rejection:
    """A start request that did not succeed: move on (5xx, 408, 429, capacity 503) or stop (other 4xx)."""
    if is_retryable_status(reply.status):
        text = reply.body[:200].decode("utf-8", "replace").strip()
        return Rejection(probe.url, f"HTTP {reply.status}: {text}")
    raise APIStatusError(reply.status, reply.body, orchestrator=probe.url, request_id=request_id)
