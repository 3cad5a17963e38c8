"""``hosted``: a request body the app left unread is read before its response ends, so the connection stays
usable.

Go's net/http drains up to 256 KiB of an unread body; hypercorn alone closes such a connection after the
response (without ``Connection: close``), and the client's next request on it fails. Raw sockets make the
order certain: the body is sent only once the response's status line has arrived, i.e. after the app has
answered without reading it.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import anyio.to_thread
import pytest

from livepeer.runner.hosting import hosted


async def refuse_unread(scope: Any, receive: Any, send: Any) -> None:
    """Answer 400 without reading the request body (as a refusal before the body is looked at)."""
    assert scope["type"] == "http"
    await send(
        {"type": "http.response.start", "status": 400, "headers": [(b"content-length", b"3")]}
    )
    await send({"type": "http.response.body", "body": b"no\n"})


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while end not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _two_requests(port: int, body: bytes) -> tuple[bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body))
        first = _read_until(sock, b"\r\n\r\n")  # the app has answered before any body byte was sent
        sock.sendall(body)
        first += _read_until(sock, b"no\n")
        sock.sendall(b"GET /y HTTP/1.1\r\nHost: t\r\n\r\n")
        return first, _read_until(sock, b"no\n")


@pytest.mark.anyio
async def test_an_unread_body_is_drained_and_the_connection_carries_the_next_request() -> None:
    async with hosted(refuse_unread) as srv:
        first, second = await anyio.to_thread.run_sync(_two_requests, srv.port, b"x" * 1000)
    assert first.startswith(b"HTTP/1.1 400")
    assert second.startswith(b"HTTP/1.1 400")  # answered on the same connection
