"""Incremental Server-Sent Events decoder (WHATWG HTML §9.2), fed with raw bytes in any split.

Speed comes from splitting in C over whole chunks instead of a Python loop per line: a chunk is normalised to
LF (``bytes.replace``; the LF of a CRLF cut between chunks is remembered), cut at its last blank line
(``rfind``), and only the complete events before the cut are decoded (one UTF-8 decode, ``split("\n\n")``);
an event of the usual shape (optional id, optional event, one data line) is read by one regex match, anything
else by the per-line path. The unfinished tail is held as raw pieces and never rescanned. Interleaved A/B on
the realistic corpus of ``bench/stream.py`` (id, event, ~120 B JSON data, CRLF, multi-line data, comments), CPU
time, 64 KiB chunks: ~2.3x the per-line decoder this replaced; recorded runs against httpx-sse are in
bench/RESULTS.md.

Limits keep memory bounded whatever the peer sends and cost a comparison per chunk on the fast path (the
per-line checks run only for input longer than a limit): ``max_line`` bounds one line, ``max_event_bytes`` one
event's lines (field names included, as received).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ._errors import LimitError, ProtocolError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "DEFAULT_MAX_LINE", "SSEDecoder", "StreamEvent"]

DEFAULT_MAX_LINE = 1 << 20
DEFAULT_MAX_EVENT_BYTES = 16 << 20
_BOM = b"\xef\xbb\xbf"
# The shape nearly every server sends (optional id, optional event, one data line), matched in one C call;
# anything else (comments, retry, multi-line data, no space after the colon) takes the general per-line path.
_SIMPLE = re.compile(r"(?:id: ([^\n\x00]*)\n)?(?:event: ([^\n]*)\n)?data: ([^\n]*)").fullmatch


@dataclass(slots=True)
class StreamEvent:
    """One server-sent event: ``ev.data``, ``ev.json()``."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> object:
        """Parse ``data`` as JSON: ``StreamEvent('{"a": 1}').json() == {"a": 1}``."""
        from ._json import check_depth  # deep nesting can overflow the C parser's stack

        check_depth(self.data, "SSE event data")
        return json.loads(self.data)


class SSEDecoder:
    """``events = decoder.feed(chunk)``; a line over ``max_line`` bytes or an event over ``max_event_bytes``
    raises ``ProtocolError``.

    ``last_id`` is the spec's "last event ID string": set when an event's terminating blank line arrives.
    """

    def __init__(
        self, max_line: int = DEFAULT_MAX_LINE, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    ) -> None:
        self.max_line = max_line
        self.max_event_bytes = max_event_bytes
        self.last_id: str | None = None
        self._retry: int | None = None
        self._pending: list[bytes] = []  # the unfinished event, LF-normalised, as it arrived
        self._pending_len = 0
        self._line_len = 0  # bytes of the unfinished last line
        self._bom_done = False
        self._skip_lf = False

    @property
    def retry(self) -> int | None:
        """The reconnection time (ms) the stream last set, counting complete lines of an unfinished event."""
        retry = self._retry
        if self._pending:  # rare: only read when reconnecting
            *lines, _ = b"".join(self._pending).decode("utf-8", "replace").split("\n")
            for line in lines:
                name, _, value = line.partition(":")
                value = value[1:] if value[:1] == " " else value
                if name == "retry" and value.isascii() and value.isdigit():
                    retry = int(value)
        return retry

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Consume ``chunk``; return the events it completed."""
        if not chunk:
            return []
        if not self._bom_done:
            head = b"".join(self._pending) + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._pending = [head]
                self._pending_len = self._line_len = len(head)
                return []
            self._bom_done = True
            self._pending, self._pending_len, self._line_len = [], 0, 0
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
            if not chunk:
                return []
        if b"\r" in chunk:
            if self._skip_lf and chunk[:1] == b"\n":
                chunk = chunk[1:]  # the LF of a CRLF whose CR ended the previous chunk
            self._skip_lf = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n")
            if b"\r" in chunk:
                chunk = chunk.replace(b"\r", b"\n")
        elif self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
            if not chunk:
                return []

        cut = chunk.rfind(b"\n\n")
        if cut >= 0:
            done = chunk[:cut]
            rest = chunk[cut + 2 :]
            if self._pending:
                done = b"".join(self._pending) + done
        elif chunk[0] == 0x0A and self._pending and self._pending[-1][-1:] == b"\n":
            done = b"".join(self._pending)[:-1]  # the blank line straddles the chunk boundary
            rest = chunk[1:]
        else:
            self._hold(chunk)
            return []
        self._pending, self._pending_len, self._line_len = [], 0, 0
        events = self._events(done)
        if rest:
            self._hold(rest)
        return events

    def _hold(self, piece: bytes) -> None:
        """Keep ``piece`` of the unfinished event, enforcing both limits on what is held."""
        nl = piece.rfind(b"\n")
        if nl < 0:
            self._line_len += len(piece)
        else:
            if self._line_len + nl > self.max_line:  # a complete line in ``piece`` may be too long
                first = piece.find(b"\n")
                if self._line_len + first > self.max_line or any(
                    len(line) > self.max_line for line in piece[first + 1 : nl].split(b"\n")
                ):
                    raise ProtocolError(f"SSE line longer than {self.max_line} bytes")
            self._line_len = len(piece) - nl - 1
        # Blank lines before the event and the LF ending its last held line are separators, not the event's
        # (the complete-event check in ``_check`` agrees), so the limit does not depend on where chunks end.
        self._pending_len += len(piece) if self._pending_len else len(piece.lstrip(b"\n"))
        if self._line_len > self.max_line:
            raise ProtocolError(f"SSE line longer than {self.max_line} bytes")
        if self._pending_len - (piece[-1:] == b"\n") > self.max_event_bytes:
            raise LimitError(f"SSE event larger than {self.max_event_bytes} bytes")
        self._pending.append(piece)

    def _events(self, done: bytes) -> list[StreamEvent]:
        """Decode complete events: ``done`` holds whole lines, each event ending at a blank line."""
        if len(done) > self.max_line or len(done) > self.max_event_bytes:
            self._check(done.split(b"\n\n"))
        events: list[StreamEvent] = []
        append = events.append
        last_id = self.last_id
        for block in done.decode("utf-8", "replace").split("\n\n"):
            m = _SIMPLE(block)  # an id holding NUL does not match: the general path ignores it
            if m is not None:
                ident, kind, value = m.groups()
                if ident is not None:
                    last_id = ident
                append(StreamEvent(value, kind or None, last_id))
                continue
            data: str | None = None
            event: str | None = None
            retry: int | None = None
            for line in block.split("\n"):
                if line[:6] == "data: ":  # the common case, first
                    data = line[6:] if data is None else data + "\n" + line[6:]
                elif line[:4] == "id: " and "\x00" not in line:
                    last_id = line[4:]
                elif line[:7] == "event: ":
                    event = line[7:] or None
                elif not line:  # a blank line inside a block: only from runs of blank lines
                    if data is not None:
                        append(StreamEvent(data, event, last_id, retry))
                    data, event, retry = None, None, None
                elif line[0] != ":":  # not a comment: the general field syntax
                    name, colon, value = line.partition(":")
                    if colon and value[:1] == " ":
                        value = value[1:]
                    if name == "data":
                        data = value if data is None else data + "\n" + value
                    elif name == "event":
                        event = value or None
                    elif name == "id":
                        if "\x00" not in value:
                            last_id = value
                    elif name == "retry" and value.isascii() and value.isdigit():
                        self._retry = retry = int(value)
                    # Unknown fields are ignored, as the spec requires.
            if data is not None:
                append(StreamEvent(data, event, last_id, retry))
        self.last_id = last_id
        return events

    def _check(self, blocks: list[bytes]) -> None:
        """Slow path for large input: find the line or event over its limit."""
        for block in blocks:
            # Blank lines around an event are not the event's (as in ``_hold``).
            if len(block.strip(b"\n")) > self.max_event_bytes:
                raise LimitError(f"SSE event larger than {self.max_event_bytes} bytes")
            if len(block) > self.max_line and any(
                len(line) > self.max_line for line in block.split(b"\n")
            ):
                raise ProtocolError(f"SSE line longer than {self.max_line} bytes")
