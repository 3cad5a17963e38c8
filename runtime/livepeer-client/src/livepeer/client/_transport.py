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
import ssl
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

import httpx

from ._errors import CertificateError

__all__ = ["PinStore", "async_client", "deadline", "sync_client"]

_END: ContextVar[float | None] = ContextVar("livepeer_client_deadline", default=None)
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


def sync_client(
    *, verify: ssl.SSLContext | bool, limits: httpx.Limits, http2: bool, pins: PinStore | None
) -> httpx.Client:
    """An httpx client whose sockets obey ``deadline`` and (when ``pins``) certificate pins."""
    from ._netbackend import _Backend

    transport = httpx.HTTPTransport(verify=verify, limits=limits, http2=http2)
    pool = getattr(transport, "_pool", None)
    # httpcore takes a network backend only at construction; httpx builds the pool itself, so ours is
    # swapped in (checked by tests/hostile; a future httpx without the attribute fails loudly there).
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _Backend(pool._network_backend, pins)
    return httpx.Client(transport=transport, limits=limits)


def async_client(
    *, verify: ssl.SSLContext | bool, limits: httpx.Limits, http2: bool, pins: PinStore | None
) -> httpx.AsyncClient:
    from ._netbackend import _AsyncBackend

    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, http2=http2)
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _AsyncBackend(pool._network_backend, pins)
    return httpx.AsyncClient(transport=transport, limits=limits)
