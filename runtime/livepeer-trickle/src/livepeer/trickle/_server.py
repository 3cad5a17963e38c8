"""``TrickleServer``: an ASGI app implementing the go-livepeer trickle server routes (PROTOCOL.md §9.1).

``server = TrickleServer(); server.create_channel("abc"); Mount("/ai/trickle", app=server)``

Deviation from go-livepeer: while a publisher's POST waits for its first body byte, go-livepeer sends an
interim ``100 Continue`` every 10 s to keep intermediaries from timing the request out. ASGI has no message
for arbitrary interim responses (hypercorn only forwards ``103 Early Hints``), so this server sends none; a
waiting POST simply stays open until bytes arrive, its segment closes, or the client goes away. Clients
must tolerate 1xx either way, and ours (httpx) skips them.

Other deliberate differences, all about not leaving anyone waiting forever:
- a publisher that disconnects after sending some bytes closes its segment, so readers see the end of a
  truncated segment instead of waiting for bytes that will never come;
- a sequence number below -2 (GET) or -1 (POST/DELETE) is a 400 (go-livepeer panics on the index);
- ``max_segment_size`` (64 MiB by default; upstream has no limit, ``None`` turns it off) answers 413 and
  closes the segment at the limit, so one publisher cannot make the server hold unbounded memory.

Idle sweeping needs a clock tick. Standalone, the ASGI lifespan runs a sweep loop; mounted under another
app (which does not forward lifespan to mounts), sweeps run lazily from incoming requests and from handlers
that are waiting anyway, at most once per ``sweep_interval``. ``await server.sweep()`` forces one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import anyio

__all__ = ["TrickleServer"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RING_SIZE = 5
STATUS_ENTRY_NOT_FOUND = 470
_SEQ_RE = re.compile(r"[+-]?[0-9]{1,18}")


class _Segment:
    """One segment's bytes; readers follow it with their own position while it is being written."""

    __slots__ = ("_waiters", "chunks", "closed", "seq", "size")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.chunks: list[bytes] = []
        self.size = 0
        self.closed = False
        self._waiters: list[anyio.CancelScope] = []

    @property
    def fresh(self) -> bool:
        return not self.closed and self.size == 0

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        self._notify()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._notify()

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for scope in waiters:
            scope.cancel()

    async def receive_unless_changed(self, receive: Receive, wake_after: float) -> Message | None:
        """The request's next ASGI message, or None once the segment grows or closes or ``wake_after`` passes.

        A handler waiting for the segment must also notice its client going away, which only ``receive()``
        tells. Waiting on ``receive()`` itself, under a scope that a change of the segment cancels, does
        both in the handler's own task: the helper task (and its task group and cancellation) that a
        second waiter would need cost more than the rest of the server's per-segment work on small
        segments (bench/NOTES.md, 2026-12-04). ASGI servers' ``receive()`` is cancel-safe (hypercorn: an
        ``asyncio.Queue``/trio channel; uvicorn: an event), so a cancelled wait loses no message.
        """
        with anyio.CancelScope(deadline=anyio.current_time() + wake_after) as scope:
            self._waiters.append(scope)
            try:
                return await receive()
            finally:
                if scope in self._waiters:
                    self._waiters.remove(scope)
        return None


class _Channel:
    __slots__ = ("closed", "mime_type", "name", "next_write", "segments", "write_time")

    def __init__(self, name: str, mime_type: str) -> None:
        self.name = name
        self.mime_type = mime_type
        self.segments: list[_Segment | None] = [None] * RING_SIZE
        self.next_write = 0
        self.write_time = time.monotonic()
        self.closed = False

    def get_for_write(self, seq: int) -> _Segment:
        if seq == -1:
            seq = self.next_write
        slot = seq % RING_SIZE
        current = self.segments[slot]
        if current is not None:
            # Same seq: returned as is, open (a repeated POST appends) or finished (the POST is answered
            # at once and its body dropped); go-livepeer trickle/trickle_server.go:526-529 at 176aa415.
            # Anything else in the slot is an older segment falling out of the ring.
            if current.seq == seq:
                return current
            current.close()
        segment = _Segment(seq)
        self.segments[slot] = segment
        return segment

    def get_for_read(self, seq: int) -> tuple[_Segment | None, int]:
        """Resolve -1/-2, precreate the segment a reader is waiting for, return (segment, next write)."""
        if seq == -1:
            seq = self.next_write
        elif seq == -2:
            seq = self.next_write - 1 if self.next_write > 0 else 0
        slot = seq % RING_SIZE
        segment = self.segments[slot]
        exists = segment is not None and segment.seq == seq
        # A reader slightly ahead of the writer waits for the segment instead of getting a 470.
        ahead_ok = seq == self.next_write or (self.next_write == 0 and seq == 1)
        if not exists and ahead_ok and not self.closed:
            segment = _Segment(seq)
            self.segments[slot] = segment
            exists = True
        return (segment if exists else None), self.next_write

    def mark_written(self, seq: int) -> None:
        self.next_write = seq + 1
        self.write_time = time.monotonic()

    def close(self) -> None:
        for segment in self.segments:
            if segment is not None:
                segment.close()
        self.segments = [None] * RING_SIZE
        self.closed = True


class _Disconnected(Exception):
    pass


# Segments are one GOP of video (a few MB at high bitrates); 64 MiB bounds a hostile publisher's share.
DEFAULT_MAX_SEGMENT_SIZE = 64 << 20


class TrickleServer:
    """Trickle channels served over ASGI; channels are created through this Python API only.

    ``server.create_channel("abc-out", mime_type="video/mp2t"); "abc-out" in server``
    """

    def __init__(
        self,
        *,
        idle_timeout: float = 300.0,
        sweep_interval: float = 60.0,
        max_segment_size: int | None = DEFAULT_MAX_SEGMENT_SIZE,
    ) -> None:
        if idle_timeout <= 0 or sweep_interval <= 0:
            raise ValueError("idle_timeout and sweep_interval must be positive")
        if max_segment_size is not None and max_segment_size <= 0:
            raise ValueError("max_segment_size must be positive or None")
        self.idle_timeout = idle_timeout
        self.sweep_interval = sweep_interval
        self.max_segment_size = max_segment_size
        self._channels: dict[str, _Channel] = {}
        self._last_sweep = time.monotonic()

    # -- Python API -------------------------------------------------------------------------------------

    def create_channel(self, name: str, mime_type: str = "video/mp2t") -> None:
        """Create channel ``name`` (idempotent: an existing channel is kept as is)."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"invalid channel name {name!r}")
        if name not in self._channels:
            self._channels[name] = _Channel(name, mime_type)

    def close_channel(self, name: str) -> bool:
        """Close and remove channel ``name``; False if it did not exist. Waiting readers see the end."""
        channel = self._channels.pop(name, None)
        if channel is None:
            return False
        channel.close()
        return True

    def close_all(self) -> None:
        for name in list(self._channels):
            self.close_channel(name)

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    @property
    def channels(self) -> list[str]:
        return sorted(self._channels)

    def next_seq(self, name: str) -> int:
        """The next write position of channel ``name`` (``KeyError`` if unknown)."""
        return self._channels[name].next_write

    async def sweep(self) -> list[str]:
        """Close channels without a write for ``idle_timeout`` (names starting with ``_`` are exempt)."""
        return self._sweep_now()

    def _sweep_now(self) -> list[str]:
        now = time.monotonic()
        self._last_sweep = now
        idle = [
            name
            for name, channel in self._channels.items()
            if not name.startswith("_") and now - channel.write_time > self.idle_timeout
        ]
        for name in idle:
            self.close_channel(name)
        return idle

    def _maybe_sweep(self) -> None:
        if time.monotonic() - self._last_sweep >= self.sweep_interval:
            self._sweep_now()

    async def serve_sweeps(self) -> None:
        """Sweep every ``sweep_interval`` until cancelled (for hosts that own a task group)."""
        while True:
            await anyio.sleep(self.sweep_interval)
            self._sweep_now()

    # -- ASGI -------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self._maybe_sweep()
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        # Starlette keeps the full path and extends root_path for mounts; older hosts strip the prefix.
        if root and path.startswith(root):
            path = path[len(root) :]
        parts = path.lstrip("/").split("/")
        method: str = scope.get("method", "GET")
        headers = _Headers(scope.get("headers", ()))
        try:
            if len(parts) == 1 and parts[0]:
                await self._route_channel(method, parts[0], headers, receive, send)
            elif len(parts) == 2 and parts[0] and parts[1]:
                await self._route_segment(method, parts[0], parts[1], headers, receive, send)
            else:
                await _respond(send, 404, b"404 page not found\n")
        except _Disconnected:
            return

    async def _route_channel(
        self, method: str, name: str, headers: _Headers, receive: Receive, send: Send
    ) -> None:
        if method == "POST":
            # Clients never create channels; a POST only confirms the channel exists.
            status = 200 if name in self._channels else 404
            await _respond(send, status, b"" if status == 200 else b"Stream not found\n")
        elif method == "DELETE":
            if self.close_channel(name):
                await _respond(send, 200)
            else:
                await _respond(send, 400, b"Invalid stream\n")
        else:
            await _respond(send, 405, b"Method Not Allowed\n")

    async def _route_segment(
        self, method: str, name: str, seq_text: str, headers: _Headers, receive: Receive, send: Send
    ) -> None:
        channel = self._channels.get(name)
        if method == "GET" and seq_text == "next":
            if channel is None:
                await _respond(send, 404, b"Stream not found\n")
                return
            nxt = str(channel.next_write).encode()
            extra = [(b"lp-trickle-latest", nxt)]
            if channel.closed:
                extra.append((b"lp-trickle-closed", b"terminated"))
            await _respond(send, 200, nxt, extra)
            return
        if method not in ("GET", "POST", "DELETE"):
            await _respond(send, 405, b"Method Not Allowed\n")
            return
        if channel is None:
            extra = [(b"connection", b"close")] if method == "POST" else []
            await _respond(send, 404, b"Stream not found\n", extra)
            return
        seq = _parse_seq(seq_text)
        lowest = -2 if method == "GET" else -1
        if seq is None or seq < lowest or (method == "DELETE" and seq < 0):
            await _respond(send, 400, b"Invalid idx\n")
            return
        if method == "GET":
            await self._get(channel, seq, receive, send)
        elif method == "POST":
            await self._post(channel, seq, headers, receive, send)
        else:
            segment = channel.segments[seq % RING_SIZE]
            if segment is None or segment.seq != seq:
                await _respond(send, 400, b"Nonexistent segment\n")
                return
            segment.close()
            await _respond(send, 200)

    async def _post(
        self, channel: _Channel, seq: int, headers: _Headers, receive: Receive, send: Send
    ) -> None:
        segment = channel.get_for_write(seq)
        if headers.get(b"lp-trickle-reset") is not None:
            # A restarted publisher: release readers stuck on older, never-finished segments while keeping
            # newer (preconnected) ones.
            for other in channel.segments:
                if other is not None and other.seq < segment.seq:
                    other.close()
        seq_header = (b"lp-trickle-seq", str(segment.seq).encode())
        if segment.closed:
            # A POST to a finished segment still in the ring: go-livepeer's body reader sees the segment's
            # closed channel before any byte (trickle_server.go:414-416, 483-503), answers 200 without
            # reading and moves the write head to seq+1 (backwards too).
            channel.mark_written(segment.seq)
            extra = [seq_header, (b"connection", b"close")]
            if channel.closed:
                extra.append((b"lp-trickle-closed", b"terminated"))
            await _respond(send, 200, b"", extra)
            return
        first = await self._first_body_message(segment, receive)
        if first is None or first["type"] == "http.disconnect" or not first.get("body"):
            if first is not None and first["type"] == "http.disconnect":
                # Nothing was written: leave the segment fresh so the publisher can retry it.
                return
            more = first is not None and first.get("more_body", False)
            if more:
                # An empty first frame of a body that continues: keep reading normally.
                await self._read_body(channel, segment, receive, send, seq_header, b"")
                return
            # The segment closed before any byte, or the body was empty.
            channel.mark_written(segment.seq)
            segment.close()
            extra = [seq_header, (b"connection", b"close")]
            if channel.closed:
                extra.append((b"lp-trickle-closed", b"terminated"))
            await _respond(send, 200, b"", extra)
            return
        if not first.get("more_body", False):
            if self._over_limit(len(first["body"])):
                await self._too_large(channel, segment, send)
                return
            channel.mark_written(segment.seq)
            segment.write(bytes(first["body"]))
            segment.close()
            await _respond(send, 200, b"", [seq_header])
            return
        await self._read_body(channel, segment, receive, send, seq_header, bytes(first["body"]))

    async def _read_body(
        self,
        channel: _Channel,
        segment: _Segment,
        receive: Receive,
        send: Send,
        seq_header: tuple[bytes, bytes],
        first: bytes,
    ) -> None:
        total = 0
        started = False
        pending = first
        while True:
            if pending:
                total += len(pending)
                if self._over_limit(total):
                    await self._too_large(channel, segment, send)
                    return
                if not started:
                    started = True
                    channel.mark_written(segment.seq)
                segment.write(pending)
            message = await receive()
            if message["type"] == "http.disconnect":
                if started:
                    segment.close()
                raise _Disconnected
            pending = bytes(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if pending:
            total += len(pending)
            if self._over_limit(total):
                await self._too_large(channel, segment, send)
                return
            if not started:
                channel.mark_written(segment.seq)
            segment.write(pending)
        elif not started:
            channel.mark_written(segment.seq)
        segment.close()
        await _respond(send, 200, b"", [seq_header])

    def _over_limit(self, total: int) -> bool:
        return self.max_segment_size is not None and total > self.max_segment_size

    async def _too_large(self, channel: _Channel, segment: _Segment, send: Send) -> None:
        segment.close()
        body = f"Segment exceeds {self.max_segment_size} bytes".encode()
        await _respond(send, 413, body, [(b"connection", b"close")])

    async def _first_body_message(self, segment: _Segment, receive: Receive) -> Message | None:
        """The first body message, or None if the segment closed first (a preconnect being released)."""
        while not segment.closed:
            message = await segment.receive_unless_changed(receive, self.sweep_interval)
            if message is not None:
                return message
            self._maybe_sweep()
        return None

    async def _get(self, channel: _Channel, seq: int, receive: Receive, send: Send) -> None:
        segment, latest = channel.get_for_read(seq)
        if segment is None:
            # Lp-Trickle-Seq echoes the index as requested (-1/-2 unresolved); a channel closed while this
            # request held it answers 200 with the same body (trickle_server.go:603-613).
            extra = [
                (b"lp-trickle-latest", str(latest).encode()),
                (b"lp-trickle-seq", str(seq).encode()),
            ]
            status = STATUS_ENTRY_NOT_FOUND
            if channel.closed:
                extra.append((b"lp-trickle-closed", b"terminated"))
                status = 200
            await _respond(send, status, b"Entry not found", extra)
            return
        await self._stream_segment(channel, segment, latest, receive, send)

    async def _stream_segment(
        self, channel: _Channel, segment: _Segment, latest: int, receive: Receive, send: Send
    ) -> None:
        position = 0
        sent = 0
        while True:
            if position < len(segment.chunks):
                data = b"".join(segment.chunks[position:])
                position = len(segment.chunks)
                if sent == 0:
                    headers = [
                        (b"lp-trickle-seq", str(segment.seq).encode()),
                        (b"content-type", channel.mime_type.encode()),
                    ]
                    if segment.seq != latest:
                        headers.append((b"lp-trickle-latest", str(latest).encode()))
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": data, "more_body": True})
                sent += len(data)
                continue
            if segment.closed:
                break
            # The request's own message (a GET has an empty body) comes first; then only a disconnect.
            message = await segment.receive_unless_changed(receive, self.sweep_interval)
            if message is not None and message["type"] == "http.disconnect":
                raise _Disconnected
            self._maybe_sweep()
        if sent:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # The segment ended without a byte: the publisher dropped it, or the channel closed.
        extra = [
            (b"lp-trickle-seq", str(segment.seq).encode()),
            (b"lp-trickle-latest", str(channel.next_write).encode()),
        ]
        if channel.closed:
            extra.append((b"lp-trickle-closed", b"terminated"))
        await _respond(send, 200, b"", extra)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.serve_sweeps)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            tg.cancel_scope.cancel()
        self.close_all()
        await send({"type": "lifespan.shutdown.complete"})


class _Headers:
    __slots__ = ("_items",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._items = {bytes(k).lower(): bytes(v) for k, v in raw}

    def get(self, name: bytes) -> bytes | None:
        return self._items.get(name)


def _parse_seq(text: str) -> int | None:
    # ASCII digits only: int() alone would also take spaces, "_" separators and non-ASCII digits.
    if not _SEQ_RE.fullmatch(text):
        return None
    return int(text)


async def _respond(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = list(headers or [])
    if body:
        all_headers.append((b"content-type", b"text/plain; charset=utf-8"))
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
