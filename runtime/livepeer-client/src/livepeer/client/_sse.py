"""Incremental Server-Sent Events decoder (WHATWG HTML §9.2), fed with raw bytes in any split."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ._errors import LimitError, ProtocolError

__all__ = ["DEFAULT_MAX_LINE", "SSEDecoder", "StreamEvent"]

DEFAULT_MAX_LINE = 1 << 20
DEFAULT_MAX_EVENT = 16 << 20
_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(rb"\r\n|\r|\n")


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
    """``events = decoder.feed(chunk)``; lines longer than ``max_line`` bytes raise ``ProtocolError``."""

    def __init__(
        self, max_line: int = DEFAULT_MAX_LINE, *, max_event: int = DEFAULT_MAX_EVENT
    ) -> None:
        self.max_line = max_line
        # Many short data lines add up to one event: bound the event being assembled as well.
        self.max_event = max_event
        self._size = 0
        self.last_id: str | None = None
        self.retry: int | None = None
        self._buf = b""
        self._bom_done = False
        self._skip_lf = False
        self._data: list[str] = []
        self._event: str | None = None
        self._event_retry: int | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Consume ``chunk``; return the events it completed."""
        if not chunk:
            return []
        if self._skip_lf:
            # The previous chunk ended in CR: a LF opening this one belongs to that CRLF.
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if not self._bom_done:
            if len(buf) < len(_BOM) and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._bom_done = True
            if buf.startswith(_BOM):
                buf = buf[len(_BOM) :]
        if b"\r" in buf:
            lines = _LINE_END.split(buf)
            self._skip_lf = buf.endswith(b"\r")
        else:
            lines = buf.split(b"\n")
        rest = lines.pop()
        if len(rest) > self.max_line:
            raise ProtocolError(f"SSE line longer than {self.max_line} bytes")
        self._buf = rest
        events: list[StreamEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(
                        StreamEvent(
                            "\n".join(self._data), self._event, self.last_id, self._event_retry
                        )
                    )
                self._data = []
                self._size = 0
                self._event = None
                self._event_retry = None
                continue
            if len(line) > self.max_line:
                raise ProtocolError(f"SSE line longer than {self.max_line} bytes")
            if line[:6] == b"data: ":  # the common case, first
                self._data.append(line[6:].decode("utf-8", "replace"))
                self._size += len(line)
                if self._size > self.max_event:
                    raise LimitError(f"SSE event larger than {self.max_event} bytes")
                continue
            if line[0] == 0x3A:  # ":" comment (keep-alives)
                continue
            name, colon, raw = line.partition(b":")
            if colon and raw[:1] == b" ":
                raw = raw[1:]
            value = raw.decode("utf-8", "replace")
            if name == b"data":
                self._data.append(value)
                self._size += len(line)
                if self._size > self.max_event:
                    raise LimitError(f"SSE event larger than {self.max_event} bytes")
            elif name == b"event":
                self._event = value or None
            elif name == b"id":
                if "\x00" not in value:
                    self.last_id = value
            elif name == b"retry" and value.isascii() and value.isdigit():
                self.retry = self._event_retry = int(value)
            # Unknown fields are ignored, as the spec requires.
        return events
