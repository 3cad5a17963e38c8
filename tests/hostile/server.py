"""A small hostile orchestrator: HTTPS/1.1 on 127.0.0.1, written on raw sockets so it can misbehave.

It speaks just enough HTTP to answer one request per connection, and answers with whatever bytes the test
asks for, optionally one byte per ``delay`` seconds (headers included). Every loop is bounded: a reply stops
when the client goes away, when ``stop()`` is called, or when the server's lifetime (default 60 s) ends, so
a test that forgets to stop it cannot hang the suite.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livepeer.devnet._keys import TempCert, self_signed_cert

__all__ = ["HostileOrch", "Reply", "Req", "html", "json_reply", "raw_reply"]


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """Bytes to send; ``delay`` seconds between single bytes (0: all at once) after ``fast`` bytes."""

    data: bytes
    delay: float = 0.0
    fast: int = 0


def raw_reply(
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" if body else b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


def json_reply(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> bytes:
    # allow_nan: hostile servers send NaN/Infinity literals, which Python's json accepts by default.
    return raw_reply(status, json.dumps(value).encode(), headers=headers)


def html(status: int = 200) -> bytes:
    return raw_reply(
        status, b"<html><body>Welcome to nginx!</body></html>", content_type="text/html"
    )


def gzip_bomb(size: int) -> bytes:
    """A gzip body that inflates to ``size`` zero bytes (about 1000:1)."""
    return gzip.compress(b"\0" * size, compresslevel=9)


def token(
    capacity: object = 1, price: object = 0, pixels: object = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "price": {"pricePerUnit": price, "pixelsPerUnit": pixels},
        "balance": 0,
        "available_capacity": capacity,
        **extra,
    }


Handler = Callable[[Req], "bytes | Reply"]


@dataclass
class HostileOrch:
    """``orch.routes[("GET", "/process/token")] = lambda req: json_reply(token())``; ``orch.url``."""

    lifetime: float = 60.0
    tls: bool = True
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    requests: list[Req] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self._cert: TempCert | None = None
        self.rotate_cert()
        self._deadline = time.monotonic() + self.lifetime
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.routes.setdefault(("GET", "/process/token"), lambda req: json_reply(token()))

    def rotate_cert(self) -> None:
        """Serve a new self-signed certificate from now on (an orchestrator restarted, or an impostor)."""
        old = self._cert
        self._cert = self_signed_cert("localhost")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self._cert.files.certfile, self._cert.files.keyfile)
        self._ctx = ctx
        if old is not None:
            old.remove()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or time.monotonic() > self._deadline

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        if self._cert is not None:
            self._cert.remove()

    def __enter__(self) -> HostileOrch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, raw: socket.socket) -> None:
        raw.settimeout(5)
        try:
            with self._ctx.wrap_socket(raw, server_side=True) if self.tls else raw as conn:
                req = _read_request(conn)
                if req is None:
                    return
                self.requests.append(req)
                handler = self.routes.get((req.method, req.path)) or self.routes.get(
                    (req.method, "*")
                )
                out = (
                    handler(req)
                    if handler
                    else raw_reply(404, b"not found", content_type="text/plain")
                )
                reply = out if isinstance(out, Reply) else Reply(out)
                self._send(conn, reply)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            raw.close()

    def _send(self, conn: socket.socket, reply: Reply) -> None:
        if not reply.delay:
            conn.sendall(reply.data)
            return
        conn.sendall(reply.data[: reply.fast])
        for i in range(reply.fast, len(reply.data)):
            if self._stop.wait(reply.delay) or self.stopping:
                return
            conn.sendall(reply.data[i : i + 1])


def _read_request(conn: socket.socket) -> Req | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > 1 << 20:
            return None
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    else:
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    return Req(method, target.split("?", 1)[0], headers, body)


def count(orch: HostileOrch, method: str, path: str) -> int:
    return sum(1 for r in orch.requests if r.method == method and r.path == path)
