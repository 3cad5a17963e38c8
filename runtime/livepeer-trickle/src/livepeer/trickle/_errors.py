"""One error hierarchy for the trickle package; every failure a caller can see is a ``TrickleError``."""

from __future__ import annotations

__all__ = [
    "JsonChannelError",
    "TrickleChannelNotFound",
    "TrickleClosed",
    "TrickleError",
    "TrickleInvalidInput",
    "TrickleProtocolError",
    "TrickleSegmentTooLarge",
    "TrickleTimeout",
]


class TrickleError(Exception):
    """Base class. ``url`` names the channel or segment URL involved, when known."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.url = url
        self.status_code = status_code


class TrickleChannelNotFound(TrickleError):
    """The server answered 404: the channel does not exist (never created, deleted or swept)."""


class TrickleClosed(TrickleError):
    """The channel or the publisher/subscriber object is closed."""


class TrickleTimeout(TrickleError, TimeoutError):
    """A wait exceeded its timeout (connect, first byte, a chunk, a queue slot)."""


class TrickleProtocolError(TrickleError):
    """The server answered something the protocol does not allow here (status, headers, body)."""


class TrickleInvalidInput(TrickleError, ValueError):
    """A caller passed something unusable: a malformed URL, a sequence number below -2, ..."""


class TrickleSegmentTooLarge(TrickleError):
    """A segment grew beyond the configured size limit."""

    def __init__(self, message: str, *, limit: int, url: str | None = None):
        super().__init__(message, url=url, status_code=413)
        self.limit = limit


class JsonChannelError(TrickleError):
    """A segment on a JSON/JSONL channel did not hold valid JSON; reading may continue after it."""

    def __init__(self, message: str, *, channel: str, seq: int, data: bytes = b""):
        super().__init__(f"{message} (channel {channel}, seq {seq})", url=channel)
        self.channel = channel
        self.seq = seq
        self.data = data
