"""The effect vocabulary of sans-IO ops: what an op may ask for, and the pure helpers of policy.

Every multi-step operation (selection, signer round trips, route attempts, live payments) is written once as
a generator that *yields* steps (``Call``, ``InfoCall``, ``Parallel``, ``Sleep``, ``Wait``) and receives their
results; ``_io.drive`` runs it with blocking httpx, ``_io.adrive`` with async httpx under anyio. Policy
therefore lives in one place and only the I/O differs. ``request`` and ``gather`` are the typed way to
yield a step: ``reply = yield from request(Call(...))`` is a ``Reply`` to the type checker, where a bare
``yield`` would be ``Any``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar

from . import limits
from ._errors import LivepeerError, TimeoutError

if TYPE_CHECKING:
    from ._streaming import AsyncOpenStream, OpenStream

__all__ = [
    "Call",
    "Deadline",
    "Flights",
    "InfoCall",
    "Op",
    "Parallel",
    "Race",
    "Reply",
    "Sleep",
    "Step",
    "Wait",
    "backoff",
    "gather",
    "is_retryable_status",
    "race",
    "request",
]

T = TypeVar("T")


def _result_limit() -> int:
    return limits.MAX_RESULT_BYTES


@dataclass
class Call:
    """One HTTP request. ``service`` = signer/discovery (verified TLS); else an orchestrator."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: object = None
    content: bytes | None = None
    data: Mapping[str, str] | None = None
    # a mapping, or (name, file) pairs when one field carries several files
    files: (
        Mapping[str, tuple[str, bytes | IO[bytes], str]]
        | Sequence[tuple[str, tuple[str, bytes | IO[bytes], str]]]
        | None
    ) = None
    timeout: float = 10.0
    service: bool = False
    stream: bool = False
    limit: int = field(default_factory=_result_limit)


@dataclass
class Reply:
    """A response; ``stream`` is set (and ``body`` empty) for an open 2xx streamed response."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    elapsed: float
    stream: OpenStream | AsyncOpenStream | None = None

    def json(self) -> object:
        import json

        return json.loads(self.body)


@dataclass
class InfoCall:
    """gRPC ``GetOrchestrator`` (blocking grpcio; the async driver runs it in a worker thread)."""

    url: str
    address: bytes
    sig: bytes
    capabilities: bytes | None
    timeout: float


@dataclass
class Parallel:
    """Run ``calls`` with at most ``limit`` in flight; each result is a Reply or a LivepeerError."""

    calls: Sequence[Call | InfoCall]
    limit: int = 8


@dataclass(kw_only=True)
class Race(Parallel):
    """``Parallel`` that returns at the first result ``enough`` accepts: first good answer wins.

    ``first`` calls start at once; the rest start as workers free up, and every ``widen_after`` seconds
    without an accepted result the number in flight doubles, up to ``limit`` (hedged requests: slow or
    hung peers do not hold the race). The
    step returns a list with ``None`` for every call not finished by then; those go on in the background
    (on the client's ``_transport.Background``, ended when the client closes) and each is handed to
    ``late`` when it finishes, or to ``drop`` when it will never run (client closed). At most ``timeout``
    seconds in the caller. Without a background owner (a user's own httpx client) this is ``Parallel``.
    ``enough`` and ``late`` run in worker threads or tasks: they must be quick and thread-safe.
    """

    enough: Callable[[int, Reply | LivepeerError], bool]
    late: Callable[[int, Reply | LivepeerError], None]
    drop: Callable[[int], None]
    timeout: float
    first: int = 4
    widen_after: float = 0.1
    background: int = 1  # workers that go on once the caller has returned


@dataclass
class Sleep:
    seconds: float


@dataclass
class Wait:
    """Wait (bounded) until other callers finish work we share, e.g. a probe already in flight."""

    events: Sequence[threading.Event]
    timeout: float


Step = Call | InfoCall | Parallel | Race | Sleep | Wait


class Flights:
    """Single-flight bookkeeping: the first caller for a key does the work, the others ``Wait``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[object, threading.Event] = {}

    def join(self, key: object) -> threading.Event | None:
        """None: you lead (call ``done`` when finished); else the event to wait for."""
        with self._lock:
            ev = self._events.get(key)
            if ev is None:
                self._events[key] = threading.Event()
            return ev

    def done(self, key: object) -> None:
        with self._lock:
            ev = self._events.pop(key, None)
        if ev is not None:
            ev.set()


Op = Generator[Step, Any, T]


class Deadline:
    """An overall time budget shared by all attempts."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def cap(self, seconds: float) -> float:
        """``seconds`` bounded by what is left; raises ``TimeoutError`` when nothing is."""
        left = self.remaining()
        if left <= 0:
            raise TimeoutError(f"deadline of {self.seconds:g}s exceeded")
        return min(seconds, left)


def is_retryable_status(status: int) -> bool:
    """Connection-level trouble, overload and capacity go to the next orchestrator; 4xx never."""
    return status in (408, 429) or status >= 500


def backoff(attempt: int, *, base: float = 0.5, cap: float = 8.0) -> float:
    """Full-jitter exponential backoff: 0.5 s doubling to 8 s."""
    return random.uniform(base / 2, min(cap, base * (2**attempt)))


def request(call: Call | InfoCall) -> Op[Reply]:
    """Yield one call; its ``Reply`` (a failure is raised into the op as a ``LivepeerError``)."""
    reply: Reply = yield call
    return reply


def race(step: Race) -> Op[list[Reply | LivepeerError | None]]:
    """Yield a ``Race`` step; None for every call still running in the background when it returned."""
    results: list[Reply | LivepeerError | None] = yield step
    return results


def gather(step: Parallel) -> Op[list[Reply | LivepeerError]]:
    """Yield a ``Parallel`` step; one ``Reply`` or ``LivepeerError`` per call, in order."""
    results: list[Reply | LivepeerError] = yield step
    return results
