"""Sockets under our httpx clients: a hard deadline on every read and write, and certificate pins.

httpx's timeouts apply per socket operation, so an orchestrator that sends one byte a second never trips
them and holds a call forever. The drivers set a deadline (a context variable, so it follows the calling
thread or task) and every read, write, connect and TLS handshake below is cut to what is left of it.

Orchestrators present self-signed certificates, so CA verification cannot be used for them. Instead the
first certificate an orchestrator presents (over gRPC or HTTPS) is pinned for the life of the Gateway (and
in the optional pin file, ``LIVEPEER_PINS``); a different certificate later is ``CertificateError``. See
docs/reliability.md for the trust model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ._errors import CertificateError

if TYPE_CHECKING:
    import asyncio

__all__ = ["Background", "PinStore", "background_of", "deadline"]

_END: ContextVar[float | None] = ContextVar("livepeer_client_deadline", default=None)
# Set in background threads and tasks (``Background``): their requests do not count as foreground.
_IN_BACKGROUND: ContextVar[bool] = ContextVar("livepeer_client_background", default=False)
ENV_PINS = "LIVEPEER_PINS"


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Bound every socket operation in this block (this thread or task) to ``seconds`` from now."""
    if seconds is None:
        yield
        return
    end = time.monotonic() + max(0.0, seconds)
    outer = _END.get()
    token = _END.set(end if outer is None else min(end, outer))
    try:
        yield
    finally:
        _END.reset(token)


def _cap(timeout: float | None, exc: type[Exception]) -> float | None:
    end = _END.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise exc("deadline exceeded")
    return left if timeout is None else min(timeout, left)


class PinStore:
    """``host:port`` -> SHA-256 of the certificate first seen there; optionally persisted as JSON."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pins: dict[str, str] = {}
        if path and os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                data = None
            if isinstance(data, dict):
                self._pins = {k: v for k, v in data.items() if isinstance(v, str)}

    @classmethod
    def from_env(cls) -> PinStore:
        return cls(os.environ.get(ENV_PINS, "").strip() or None)

    def check(self, host: str, port: int, der: bytes) -> None:
        """Pin ``der`` on first sight; raise ``CertificateError`` if another certificate was pinned."""
        key = f"{host.lower()}:{port}"
        digest = hashlib.sha256(der).hexdigest()
        with self._lock:
            known = self._pins.get(key)
            if known == digest:
                return
            if known is None:
                self._pins[key] = digest
                self._save()
                return
        raise CertificateError(
            f"orchestrator {key} presented a different TLS certificate than the one pinned "
            f"(sha256 {known[:16]}…, now {digest[:16]}…); refusing it. A restarted orchestrator is "
            "trusted again by a new Gateway (or after removing its entry from the pin file)."
        )

    def _save(self) -> None:
        if not self.path:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self._pins, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only pin file still pins for this Gateway's life


class Background:
    """Work a client's calls left running (probes that lost the race, ``_http.Race``); ends with the client.

    Closing the client (``Gateway.close``/``aclose`` close the clients they own) stops new work, cancels
    what can be cancelled and joins the worker threads (each is bounded by its call's timeout). Threads
    and tasks are registered here so that nothing outlives the Gateway that started it.
    """

    # A closing client waits at most this long for its background threads (a probe in flight on a hung
    # orchestrator ends by its own timeout, _selection.PROBE_TIMEOUT = 2 s).
    JOIN_TIMEOUT = 3.0
    # Background work yields to the caller's own requests (the call that won the race is usually on
    # its way to the same peers' machines and CPU), but at most this long per background request.
    YIELD_MAX = 0.5
    # The first background probe after a won race also waits this long after the winning call (a close ends
    # the wait): a one-shot Gateway closes right after its call, and a probe started in between made the
    # close wait out its TLS handshake (docs/decisions.md D-perf-3: close 5.8 -> 0.7 ms with 50 orchestrators).
    AFTER_WIN = 0.05

    def __init__(self) -> None:
        self.closed = False
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._scopes: set[object] = set()  # anyio.CancelScope of background tasks
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until they finish
        self._foreground = 0
        self.finished = 0  # foreground requests finished so far (a generation count)
        self._quiet = threading.Condition(self._lock)

    @contextlib.contextmanager
    def foreground(self) -> Iterator[None]:
        """Count a request (until its response headers) unless it is background work itself."""
        if _IN_BACKGROUND.get():
            yield
            return
        with self._lock:
            self._foreground += 1
        try:
            yield
        finally:
            with self._lock:
                self._foreground -= 1
                self.finished += 1
                if not self._foreground:
                    self._quiet.notify_all()

    def _busy(self, since: int | None) -> bool:
        # Foreground requests in flight, or (``since``) none finished since then: the caller that won a
        # race is still on its way to its own request.
        return bool(self._foreground) or (since is not None and self.finished == since)

    def quiet(self, since: int | None = None) -> None:
        """Block (at most ``YIELD_MAX``) while the foreground is busy (``_busy``), then, after a won race
        (``since``), ``AFTER_WIN`` more; a close ends the wait."""
        end = time.monotonic() + self.YIELD_MAX
        with self._lock:
            while self._busy(since) and not self.closed:
                left = end - time.monotonic()
                if left <= 0:
                    return
                self._quiet.wait(left)
            if since is None:
                return
            grace = min(end, time.monotonic() + self.AFTER_WIN)
            while not self.closed and (left := grace - time.monotonic()) > 0:
                self._quiet.wait(left)

    async def aquiet(self, since: int | None = None) -> None:
        """``quiet`` for a task: polls (background tasks are few and bounded; the caller never polls)."""
        import anyio

        end = time.monotonic() + self.YIELD_MAX
        while self._busy(since) and not self.closed and time.monotonic() < end:  # noqa: ASYNC110 - counted across threads and loops
            await anyio.sleep(0.005)
        if since is not None:
            grace = min(end, time.monotonic() + self.AFTER_WIN)
            while not self.closed and time.monotonic() < grace:  # noqa: ASYNC110 - as above
                await anyio.sleep(0.005)

    def thread(self, target: Callable[[], None]) -> bool:
        """Start ``target`` in a registered worker thread; False once closed."""

        def run() -> None:
            _IN_BACKGROUND.set(True)
            try:
                target()
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        with self._lock:
            if self.closed:
                return False
            t = threading.Thread(target=run, name="livepeer-background", daemon=True)
            self._threads.add(t)
        t.start()
        return True

    def spawn(self, fn: Callable[[], Awaitable[None]]) -> bool:
        """Start ``fn()`` as a task that outlives the caller's task (asyncio task or trio system task)."""
        import asyncio

        import anyio

        async def run() -> None:
            _IN_BACKGROUND.set(True)
            with anyio.CancelScope() as scope:
                with self._lock:
                    if self.closed:
                        return
                    self._scopes.add(scope)
                try:
                    await fn()
                finally:
                    with self._lock:
                        self._scopes.discard(scope)

        with self._lock:
            if self.closed:
                return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: anyio's other backend, trio
            import trio

            trio.lowlevel.spawn_system_task(run)
            return True
        task = loop.create_task(run())
        with self._lock:
            self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def stop(self) -> list[threading.Thread]:
        """No new work; cancel background tasks; return the threads still running."""
        with self._lock:
            self.closed = True
            scopes = list(self._scopes)
            threads = list(self._threads)
            self._quiet.notify_all()
        for scope in scopes:
            scope.cancel()  # type: ignore[attr-defined]
        return threads

    def join(self, threads: list[threading.Thread]) -> None:
        end = time.monotonic() + self.JOIN_TIMEOUT
        for t in threads:
            if t is not threading.current_thread():
                t.join(max(0.0, end - time.monotonic()))

    async def ajoin(self) -> None:
        """Wait (bounded) for the cancelled tasks to unwind; threads are joined off the loop."""
        import anyio

        with self._lock:
            tasks = list(self._tasks)
        with anyio.move_on_after(self.JOIN_TIMEOUT):
            if tasks:
                import asyncio

                await asyncio.gather(*tasks, return_exceptions=True)
            while self._scopes:  # noqa: ASYNC110 - trio system tasks have no handle; scopes leave the set
                await anyio.sleep(0.001)


def background_of(client: object) -> Background | None:
    """The ``Background`` of a client built by ``sync_client``/``async_client`` (None for a user's client)."""
    return getattr(getattr(client, "_transport", None), "background", None)
