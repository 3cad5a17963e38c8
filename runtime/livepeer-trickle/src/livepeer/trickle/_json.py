"""JSON framings over trickle channels.

- control and events (go-livepeer, PROTOCOL §8.3): **one JSON object per segment** —
  ``JsonSegmentWriter`` / ``JsonSegmentReader``; the writer sends ``{"keep":"alive"}`` after
  ``keepalive_interval`` seconds without a write, so the server's idle sweep never closes a quiet control
  channel, and readers drop keepalives;
- data channels (BYOC ``-data``): **newline-delimited JSON**, each segment holding the lines written during
  ``rotate_interval`` seconds — ``JsonlWriter`` / ``JsonlReader``. Lines go out as they are written (the
  segment is streamed), so readers see them without waiting for the rotation.

A malformed segment or line raises ``JsonChannelError`` (with ``.channel`` and ``.seq``) from the reader's
``__anext__``; iterating again continues with the next segment or line.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any

import anyio
from typing_extensions import Self

from livepeer.trickle._errors import JsonChannelError, TrickleError, TrickleInvalidInput
from livepeer.trickle._publisher import SegmentWriter, TricklePublisher, _SegmentContext
from livepeer.trickle._subscriber import TrickleSubscriber

__all__ = ["KEEPALIVE", "JsonSegmentReader", "JsonSegmentWriter", "JsonlReader", "JsonlWriter"]

KEEPALIVE: dict[str, Any] = {"keep": "alive"}
DEFAULT_MAX_MESSAGE = 1024 * 1024


def _encode(obj: Mapping[str, Any]) -> bytes:
    if not isinstance(obj, Mapping):
        raise TrickleInvalidInput(
            f"JSON channel messages must be objects, got {type(obj).__name__}"
        )
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TrickleInvalidInput(f"message is not JSON-serializable: {exc}") from exc


def _decode(data: bytes, channel: str, seq: int) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JsonChannelError(
            f"malformed JSON: {exc}", channel=channel, seq=seq, data=data[:256]
        ) from None
    if not isinstance(value, dict):
        raise JsonChannelError(
            f"expected a JSON object, got {type(value).__name__}",
            channel=channel,
            seq=seq,
            data=data[:256],
        )
    return value


def _is_keepalive(obj: Mapping[str, Any]) -> bool:
    return len(obj) == 1 and obj.get("keep") == "alive"


class _Bad:
    __slots__ = ("error",)

    def __init__(self, error: JsonChannelError) -> None:
        self.error = error


class _Writer:
    """Owns or borrows a publisher and a task group for its timer."""

    def __init__(
        self, target: TricklePublisher | str, mime_type: str, publisher_kwargs: dict[str, Any]
    ) -> None:
        if isinstance(target, TricklePublisher):
            if publisher_kwargs:
                raise TrickleInvalidInput("publisher options apply only when a URL is given")
            self.publisher = target
            self._own = False
        else:
            self.publisher = TricklePublisher(target, mime_type, **publisher_kwargs)
            self._own = True
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        if self._own:
            await self.publisher.__aenter__()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._started(tg)
        return self

    def _started(self, tg: anyio.abc.TaskGroup) -> None:
        """Hook: start background timers."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _before_close(self) -> None:
        """Hook: flush what is pending."""

    async def aclose(self) -> None:
        """Stop the timer; close (and ``DELETE``) the publisher if this writer created it."""
        if self._closed:
            return
        self._closed = True
        tg, self._tg = self._tg, None
        try:
            if tg is not None:
                tg.cancel_scope.cancel()
                await tg.__aexit__(None, None, None)
        finally:
            # Under cancellation the task-group exit re-raises; the publisher must still be closed, or
            # its own task group stays open on this task and every later cancel-scope exit fails.
            with anyio.CancelScope(shield=True):
                await self._before_close()
            if self._own:
                await self.publisher.aclose()

    def _check(self) -> None:
        if self._closed:
            raise TrickleError("JSON writer is closed", url=self.publisher.url)
        if self._tg is None:
            raise TrickleError(
                "use `async with` on the JSON writer before writing", url=self.publisher.url
            )


class JsonSegmentWriter(_Writer):
    """One JSON object per segment, with a keepalive while idle.

    ``async with JsonSegmentWriter(control_url) as w: await w.write({"prompt": "cat"})``
    """

    def __init__(
        self,
        target: TricklePublisher | str,
        *,
        keepalive_interval: float | None = 10.0,
        mime_type: str = "application/json",
        **publisher_kwargs: Any,
    ) -> None:
        super().__init__(target, mime_type, publisher_kwargs)
        if keepalive_interval is not None and keepalive_interval <= 0:
            raise TrickleInvalidInput("keepalive_interval must be positive or None")
        self.keepalive_interval = keepalive_interval
        self.keepalives_sent = 0
        self._last_write = 0.0

    def _started(self, tg: anyio.abc.TaskGroup) -> None:
        self._last_write = anyio.current_time()
        if self.keepalive_interval is not None:
            tg.start_soon(self._keepalive, self.keepalive_interval)

    async def write(self, obj: Mapping[str, Any]) -> int:
        """Send ``obj`` as one segment; returns its seq."""
        self._check()
        data = _encode(obj)
        self._last_write = anyio.current_time()
        return await self.publisher.write(data)

    async def _keepalive(self, interval: float) -> None:
        while True:
            await anyio.sleep(max(0.0, self._last_write + interval - anyio.current_time()))
            if anyio.current_time() - self._last_write < interval:
                continue
            self._last_write = anyio.current_time()
            try:
                await self.publisher.write(_encode(KEEPALIVE))
                self.keepalives_sent += 1
            except TrickleError:
                return  # the publisher is done; the next write() reports why


class JsonlWriter(_Writer):
    """Newline-delimited JSON, a new segment every ``rotate_interval`` seconds.

    ``async with JsonlWriter(data_url) as w: await w.write({"t": 1})``
    """

    def __init__(
        self,
        target: TricklePublisher | str,
        *,
        rotate_interval: float = 10.0,
        mime_type: str = "application/jsonl",
        **publisher_kwargs: Any,
    ) -> None:
        super().__init__(target, mime_type, publisher_kwargs)
        if rotate_interval <= 0:
            raise TrickleInvalidInput("rotate_interval must be positive")
        self.rotate_interval = rotate_interval
        self._context: _SegmentContext | None = None
        self._segment: SegmentWriter | None = None
        self._opened_at = 0.0
        self._write_lock = anyio.Semaphore(1)

    @property
    def current_seq(self) -> int | None:
        """The seq of the open segment, or None between rotations."""
        return None if self._segment is None else self._segment.seq

    def _started(self, tg: anyio.abc.TaskGroup) -> None:
        tg.start_soon(self._rotator)

    async def write(self, obj: Mapping[str, Any]) -> int:
        """Append ``obj`` as one line; returns the seq of the segment that carries it."""
        self._check()
        line = _encode(obj) + b"\n"
        async with self._write_lock:
            if self._segment is None:
                self._context = self.publisher.segment()
                self._segment = await self._context.__aenter__()
                self._opened_at = anyio.current_time()
            segment = self._segment
            await segment.write(line)
            return segment.seq

    async def rotate(self) -> None:
        """End the current segment now (the next write starts a new one)."""
        async with self._write_lock:
            context, self._context, self._segment = self._context, None, None
            if context is not None:
                await context.__aexit__(None, None, None)

    async def _rotator(self) -> None:
        while True:
            if self._segment is None:
                await anyio.sleep(self.rotate_interval / 4)
                continue
            remaining = self._opened_at + self.rotate_interval - anyio.current_time()
            if remaining > 0:
                await anyio.sleep(remaining)
                continue
            await self.rotate()

    async def _before_close(self) -> None:
        await self.rotate()


class _Reader(ABC):
    def __init__(self, target: TrickleSubscriber | str, subscriber_kwargs: dict[str, Any]) -> None:
        if isinstance(target, TrickleSubscriber):
            if subscriber_kwargs:
                raise TrickleInvalidInput("subscriber options apply only when a URL is given")
            self.subscriber = target
            self._own = False
        else:
            self.subscriber = TrickleSubscriber(target, **subscriber_kwargs)
            self._own = True
        self.keepalives = 0
        self._items: AsyncIterator[dict[str, Any] | _Bad] | None = None

    async def __aenter__(self) -> Self:
        if self._own:
            await self.subscriber.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the subscriber if this reader created it."""
        if self._own:
            await self.subscriber.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self._items is None:
            self._items = self._generate()
        while True:
            item = await self._items.__anext__()
            if isinstance(item, _Bad):
                raise item.error
            if _is_keepalive(item):
                self.keepalives += 1
                continue
            return item

    @abstractmethod
    def _generate(self) -> AsyncIterator[dict[str, Any] | _Bad]:
        """The channel's framing: parsed objects, or ``_Bad`` markers that ``__anext__`` raises."""


class JsonSegmentReader(_Reader):
    """Read one JSON object per segment; keepalives are skipped.

    ``async for msg in JsonSegmentReader(events_url): ...``
    """

    def __init__(
        self,
        target: TrickleSubscriber | str,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        **subscriber_kwargs: Any,
    ) -> None:
        if isinstance(target, str):
            subscriber_kwargs.setdefault("max_segment_size", max_message_size)
        super().__init__(target, subscriber_kwargs)
        self.max_message_size = max_message_size

    async def _generate(self) -> AsyncIterator[dict[str, Any] | _Bad]:
        async for segment in self.subscriber:
            try:
                data = await segment.read()
            except TrickleError as exc:
                yield _Bad(
                    JsonChannelError(
                        f"unreadable segment: {exc}", channel=self.subscriber.url, seq=segment.seq
                    )
                )
                continue
            if len(data) > self.max_message_size:
                yield _Bad(
                    JsonChannelError(
                        "message too large", channel=self.subscriber.url, seq=segment.seq
                    )
                )
                continue
            if not data.strip():
                continue
            try:
                yield _decode(data, self.subscriber.url, segment.seq)
            except JsonChannelError as exc:
                yield _Bad(exc)


class JsonlReader(_Reader):
    """Read newline-delimited JSON objects as their lines arrive; keepalives are skipped.

    ``async for row in JsonlReader(data_url): ...``
    """

    def __init__(
        self,
        target: TrickleSubscriber | str,
        *,
        max_line_size: int = DEFAULT_MAX_MESSAGE,
        **subscriber_kwargs: Any,
    ) -> None:
        super().__init__(target, subscriber_kwargs)
        self.max_line_size = max_line_size

    async def _generate(self) -> AsyncIterator[dict[str, Any] | _Bad]:
        channel = self.subscriber.url
        async for segment in self.subscriber:
            buffer = b""
            overflow = False
            try:
                async for chunk in segment:
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if overflow:
                            overflow = False  # the tail of an oversized line
                            continue
                        if len(line) > self.max_line_size:
                            yield _Bad(
                                JsonChannelError("line too long", channel=channel, seq=segment.seq)
                            )
                            continue
                        item = self._parse(line, channel, segment.seq)
                        if item is not None:
                            yield item
                    if len(buffer) > self.max_line_size:
                        if not overflow:
                            yield _Bad(
                                JsonChannelError("line too long", channel=channel, seq=segment.seq)
                            )
                        overflow = True
                        buffer = b""
            except TrickleError as exc:
                yield _Bad(
                    JsonChannelError(f"unreadable segment: {exc}", channel=channel, seq=segment.seq)
                )
                continue
            if buffer and not overflow:
                if len(buffer) > self.max_line_size:
                    yield _Bad(JsonChannelError("line too long", channel=channel, seq=segment.seq))
                    continue
                item = self._parse(buffer, channel, segment.seq)
                if item is not None:
                    yield item

    @staticmethod
    def _parse(line: bytes, channel: str, seq: int) -> dict[str, Any] | _Bad | None:
        if not line.strip():
            return None
        try:
            return _decode(line, channel, seq)
        except JsonChannelError as exc:
            return _Bad(exc)
