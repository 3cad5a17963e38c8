"""Run an ASGI app under hypercorn inside the current event loop, on a loopback port.

Used by ``livepeer-runner serve``, by the devnet (which hosts several apps in one process) and by tests.
We bind the listening socket ourselves and hand hypercorn its file descriptor: that way port 0 works and
the caller learns the real port before the first request, with no polling.

Why hypercorn: it speaks HTTP/1.1 and HTTP/2 (ALPN ``h2``) on one TLS port and implements the ASGI
``http.response.trailers`` extension, which is what gRPC-over-HTTP/2 needs (the devnet serves gRPC and
HTTPS on one port, as go-livepeer does).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import sniffio

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

__all__ = ["HostedApp", "TLSFiles", "bind_socket", "hosted"]

log = logging.getLogger("livepeer.runner.hosting")


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for a TLS listener."""

    certfile: str
    keyfile: str


@dataclass(frozen=True)
class HostedApp:
    """Where a hosted app listens."""

    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind and listen on ``host:port`` (0 = a free port); the caller owns the socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


# Go's net/http reads what a handler left unread of a request body, up to 256 KiB (maxPostHandlerReadBytes,
# net/http/server.go), so the connection can carry the client's next request. hypercorn instead closes a
# connection whose request body had not fully arrived when the response ended (h11 ``_maybe_recycle``: their
# state is not DONE) — after the response, with no ``Connection: close`` — and a client that reuses it meets
# a dropped connection. That happened now and then when the body came in a TCP segment after the headers
# (a devnet 400 sent before the body was read; tests/devnet/test_byoc.py's second request failed 1 run in 3).
# hypercorn ends the stream on the response's last body message, not when the app returns, so the rest of the
# request body is read just before that message is passed on.
DRAIN_LIMIT = 256 << 10
# A client still sending a large body after its refusal is not waited for long: the connection then closes.
DRAIN_TIMEOUT = 1.0


def draining(app: ASGIApp) -> ASGIApp:
    """``app``, reading what it left unread of an HTTP request body before its response ends (as Go does)."""

    async def wrapped(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        more = True  # the request may still have body to come

        async def tracked() -> MutableMapping[str, Any]:
            nonlocal more
            message = await receive()
            more = message.get("type") == "http.request" and bool(message.get("more_body"))
            return message

        async def ending(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body"):
                drained = 0
                with anyio.move_on_after(DRAIN_TIMEOUT):
                    while more and drained <= DRAIN_LIMIT:
                        drained += len((await tracked()).get("body", b""))
            await send(message)

        await app(scope, tracked, ending)

    return wrapped


@asynccontextmanager
async def hosted(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: TLSFiles | None = None,
    graceful_timeout: float = 1.0,
    sock: socket.socket | None = None,
) -> AsyncIterator[HostedApp]:
    """Serve ``app`` for the duration of the ``async with`` block.

    ``async with hosted(app) as srv: httpx.get(srv.url + "/health")``
    """
    from hypercorn.config import Config

    app = draining(app)

    own_socket = sock is None
    listener = bind_socket(host, port) if sock is None else sock
    bound_host, bound_port = listener.getsockname()[:2]
    config = Config()
    # hypercorn wraps the descriptor in its own socket object and closes it on shutdown; give it a
    # duplicate so the caller's socket stays valid (and is closed exactly once, by its owner).
    config.bind = [f"fd://{os.dup(listener.fileno())}"]
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    config.errorlog = None
    config.keep_alive_timeout = 75
    if tls is not None:
        config.certfile = tls.certfile
        config.keyfile = tls.keyfile
        config.alpn_protocols = ["h2", "http/1.1"]
    stopped = anyio.Event()

    async def shutdown_trigger() -> None:
        await stopped.wait()

    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve as trio_serve

        serve: Callable[..., Awaitable[None]] = trio_serve
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        serve = asyncio_serve

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve_quietly, serve, app, config, shutdown_trigger, stopped)
            try:
                yield HostedApp(host=bound_host, port=bound_port, tls=tls is not None)
            finally:
                stopped.set()
    finally:
        if own_socket:
            listener.close()


async def _serve_quietly(
    serve: Callable[..., Awaitable[None]],
    app: ASGIApp,
    config: Any,
    shutdown_trigger: Callable[[], Awaitable[None]],
    stopped: anyio.Event,
) -> None:
    try:
        await serve(app, config, shutdown_trigger=shutdown_trigger)
    except (ssl.SSLError, OSError) as exc:
        # While shutting down, hypercorn closes every open connection and lets a per-connection
        # failure escape `serve()` — e.g. asyncio's TLS close raising APPLICATION_DATA_AFTER_CLOSE_NOTIFY
        # when a client is still sending. The listener is going away anyway; that must not fail the
        # owner of the server. Before shutdown was requested it is a real failure and propagates.
        if not stopped.is_set():
            raise
        log.debug("connection error while shutting down %s: %s", config.bind, exc)
