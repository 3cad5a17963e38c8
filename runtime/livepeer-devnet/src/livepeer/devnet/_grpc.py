"""A unary gRPC handler on plain ASGI: go-livepeer serves gRPC and HTTPS on one TLS port.

Framing (gRPC over HTTP/2): each message is a 1-byte compressed flag, a 4-byte big-endian length and the
protobuf bytes; the status travels in the ``grpc-status`` / ``grpc-message`` trailers, which needs the ASGI
``http.response.trailers`` extension (hypercorn has it).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

__all__ = ["GrpcError", "GrpcStatus", "is_grpc", "serve_unary"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class GrpcStatus:
    OK = 0
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


class GrpcError(Exception):
    """Raised by a handler to answer with a non-OK ``grpc-status``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_grpc(scope: Scope) -> bool:
    """True for HTTP/2 requests whose content-type starts with ``application/grpc`` (go-livepeer's rule)."""
    if scope.get("type") != "http" or scope.get("http_version") != "2":
        return False
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bytes(value).startswith(b"application/grpc")
    return False


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)


async def serve_unary(
    scope: Scope,
    receive: Receive,
    send: Send,
    methods: dict[str, Callable[[bytes], Awaitable[bytes]]],
    *,
    limit: int = 4 * 1024 * 1024,
) -> None:
    """Answer one unary call: ``methods`` maps ``/pkg.Service/Method`` to ``async (request) -> reply``."""
    status, message, reply = GrpcStatus.OK, "", b""
    handler = methods.get(scope.get("path", ""))
    body = await _read_body(receive, limit + 5)
    if body is None:
        status, message = GrpcStatus.INTERNAL, "request too large or aborted"
    elif handler is None:
        status, message = GrpcStatus.UNIMPLEMENTED, f"unknown method {scope.get('path', '')}"
    elif len(body) < 5 or body[0] != 0 or struct.unpack(">I", body[1:5])[0] != len(body) - 5:
        status, message = GrpcStatus.INTERNAL, "grpc: malformed or compressed message"
    else:
        try:
            reply = await handler(body[5:])
        except GrpcError as exc:
            status, message = exc.code, exc.message
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc+proto")],
            "trailers": True,
        }
    )
    payload = b"\x00" + struct.pack(">I", len(reply)) + reply if status == GrpcStatus.OK else b""
    await send({"type": "http.response.body", "body": payload, "more_body": False})
    trailers = [(b"grpc-status", str(status).encode())]
    if message:
        # grpc-message is percent-encoded (gRPC over HTTP/2 spec).
        trailers.append((b"grpc-message", quote(message, safe=" ").encode()))
    await send({"type": "http.response.trailers", "headers": trailers, "more_trailers": False})
