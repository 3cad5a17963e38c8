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
from typing import Any

import httpcore
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


def _peer_der(stream: Any) -> bytes | None:
    obj = stream.get_extra_info("ssl_object")
    return obj.getpeercert(True) if obj is not None else None  # positional: _ssl._SSLSocket


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, owner: _Backend, host: str, port: int):
        self._inner, self._owner, self._host, self._port = inner, owner, host, port

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _cap(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(
            ssl_context, server_hostname, _cap(timeout, httpcore.ConnectTimeout)
        )
        if self._owner.pins is not None:
            try:
                self._owner.pins.check(self._host, self._port, _peer_der(tls) or b"")
            except BaseException:
                tls.close()
                raise
        return _Stream(tls, self._owner, self._host, self._port)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, pins: PinStore | None) -> None:
        self._inner, self.pins = inner, pins

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, _cap(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _Stream(stream, self, host, port)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        return self._inner.connect_unix_socket(
            path, _cap(timeout, httpcore.ConnectTimeout), socket_options
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(
        self, inner: httpcore.AsyncNetworkStream, owner: _AsyncBackend, host: str, port: int
    ):
        self._inner, self._owner, self._host, self._port = inner, owner, host, port

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _cap(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _cap(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls = await self._inner.start_tls(
            ssl_context, server_hostname, _cap(timeout, httpcore.ConnectTimeout)
        )
        if self._owner.pins is not None:
            try:
                self._owner.pins.check(self._host, self._port, _peer_der(tls) or b"")
            except BaseException:
                await tls.aclose()
                raise
        return _AsyncStream(tls, self._owner, self._host, self._port)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend, pins: PinStore | None) -> None:
        self._inner, self.pins = inner, pins

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, _cap(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _AsyncStream(stream, self, host, port)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(
            path, _cap(timeout, httpcore.ConnectTimeout), socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def sync_client(
    *, verify: ssl.SSLContext | bool, limits: httpx.Limits, http2: bool, pins: PinStore | None
) -> httpx.Client:
    """An httpx client whose sockets obey ``deadline`` and (when ``pins``) certificate pins."""
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
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, http2=http2)
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _AsyncBackend(pool._network_backend, pins)
    return httpx.AsyncClient(transport=transport, limits=limits)
