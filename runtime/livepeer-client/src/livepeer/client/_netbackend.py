"""The httpcore network backends behind ``_transport``'s clients: deadline-capped socket operations and pins.

A module of its own so that ``import livepeer.client`` does not import httpcore's connection pool (httpx
imports it only when a client is built; measured: +150 ms and ~100 modules at import, trio included when
installed). The clients (``sync_client``/``async_client``) are built here too, so nothing imports back:
the dispatcher imports this module when it builds its first client.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import weakref
from typing import Any

import httpcore
import httpx

from ._transport import Background, PinStore, _cap

__all__ = ["_AsyncBackend", "_Backend"]


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
        self._owner.track(tls)  # wrap_socket detached the TCP socket object: track the TLS one
        return _Stream(tls, self._owner, self._host, self._port)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, pins: PinStore | None) -> None:
        self._inner, self.pins = inner, pins
        self._lock = threading.Lock()
        self._socks: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def abort(self) -> None:
        """Shut down every socket still open (``_transport``'s client close, with background threads).

        Closing a socket does not wake a thread blocked on it; ``shutdown`` does, so background probes
        waiting for an answer end at once (one still inside its TLS handshake ends with the handshake:
        ``wrap_socket`` has detached the socket object we hold).
        """
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
        self.track(stream)
        return _Stream(stream, self, host, port)

    def track(self, stream: httpcore.NetworkStream) -> None:
        sock = stream.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            with self._lock:
                self._socks.add(sock)

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


class _Transport(httpx.HTTPTransport):
    """httpx's transport plus the client's ``Background``, ended before the pool closes."""

    background: Background

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.background.foreground():
            return super().handle_request(request)

    def close(self) -> None:
        threads = self.background.stop()
        if threads:
            # Background probes in flight (even mid-handshake) fail at once instead of by their timeout.
            backend = getattr(getattr(self, "_pool", None), "_network_backend", None)
            abort = getattr(backend, "abort", None)
            if abort is not None:
                abort()
        super().close()
        self.background.join(threads)


class _AsyncTransport(httpx.AsyncHTTPTransport):
    background: Background

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with self.background.foreground():
            return await super().handle_async_request(request)

    async def aclose(self) -> None:
        import anyio

        threads = self.background.stop()
        await self.background.ajoin()
        await super().aclose()
        if threads:
            await anyio.to_thread.run_sync(self.background.join, threads)


def _with_our_backend(
    transport: _Transport | _AsyncTransport,
    backend: type[_Backend] | type[_AsyncBackend],
    pins: PinStore | None,
) -> None:
    transport.background = Background()
    pool = getattr(transport, "_pool", None)
    # httpcore takes a network backend only at construction; httpx builds the pool itself, so ours is
    # swapped in (checked by tests/hostile; a future httpx without the attribute fails loudly there).
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = backend(pool._network_backend, pins)


def sync_client(
    *, verify: ssl.SSLContext | bool, limits: httpx.Limits, http2: bool, pins: PinStore | None
) -> httpx.Client:
    """An httpx client whose sockets obey ``deadline`` and (when ``pins``) certificate pins."""
    transport = _Transport(verify=verify, limits=limits, http2=http2)
    _with_our_backend(transport, _Backend, pins)
    return httpx.Client(transport=transport, limits=limits)


def async_client(
    *, verify: ssl.SSLContext | bool, limits: httpx.Limits, http2: bool, pins: PinStore | None
) -> httpx.AsyncClient:
    transport = _AsyncTransport(verify=verify, limits=limits, http2=http2)
    _with_our_backend(transport, _AsyncBackend, pins)
    return httpx.AsyncClient(transport=transport, limits=limits)
