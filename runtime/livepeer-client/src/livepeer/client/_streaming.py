"""``StreamResponse`` / ``AsyncStreamResponse``: lazily opened SSE streams from an orchestrator."""

from __future__ import annotations

import builtins
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import anyio

from . import limits
from ._errors import LivepeerError, PaymentError, ProtocolError, TimeoutError
from ._json import loads
from ._sse import SSEDecoder, StreamEvent
from ._transport import deadline

__all__ = ["AsyncOpenStream", "AsyncStreamResponse", "OpenStream", "StreamResponse"]

INSUFFICIENT_BALANCE = "insufficient balance"


@dataclass
class OpenStream:
    """An HTTP response whose body is being streamed (sync)."""

    chunks: Iterator[bytes]
    close: Callable[[], None]
    orchestrator: str
    request_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    cost_wei: int = 0  # expected value of the tickets paid to open it (see _spend.py)


@dataclass
class AsyncOpenStream:
    """An HTTP response whose body is being streamed (async)."""

    chunks: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]
    orchestrator: str
    request_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    cost_wei: int = 0  # expected value of the tickets paid to open it (see _spend.py)


class _Events:
    """Policy shared by both stream types: [DONE], the balance event, insufficient balance."""

    def __init__(self, max_line: int | None) -> None:
        self.decoder = SSEDecoder(
            max_line if max_line is not None else limits.MAX_SSE_LINE_BYTES,
            max_event_bytes=limits.MAX_SSE_EVENT_BYTES,
        )
        self.pending: deque[StreamEvent] = deque()
        self.done = False
        self.balance: float | None = None
        # Raised only after the events that preceded it have been handed out.
        self.error: PaymentError | None = None

    def take_error(self) -> PaymentError | None:
        err, self.error = self.error, None
        return err

    def feed(self, chunk: bytes, orchestrator: str) -> None:
        for ev in self.decoder.feed(chunk):
            if self.done:
                return
            if ev.event == INSUFFICIENT_BALANCE:
                self.done = True
                self.error = PaymentError(f"{orchestrator} ended the stream: insufficient balance")
                return
            if ev.data == "[DONE]":
                self.done = True
                return
            if ev.event is None and ev.data.startswith('{"balance"'):
                # The orchestrator injects {"balance": n} before [DONE]; it is not the caller's data.
                try:
                    value = loads(ev.data, "balance event")
                except ProtocolError:
                    value = None
                if isinstance(value, dict) and set(value) == {"balance"}:
                    bal = value["balance"]
                    if isinstance(bal, (int, float)):
                        self.balance = float(bal)
                        continue
            self.pending.append(ev)


class StreamResponse:
    """Iterate events of a server-sent stream: ``with gw.stream("llm", input=...) as s: for ev in s: ...``.

    Nothing is sent until the block is entered or iteration starts; leaving early closes the connection.
    ``balance`` holds the orchestrator's last balance event, ``orchestrator`` the URL that answered.
    ``timeout`` bounds opening and then each wait for the next event (``TimeoutError``), however slowly
    the bytes arrive; the stream as a whole may last longer (docs/reliability.md).
    """

    def __init__(
        self,
        opener: Callable[[], OpenStream],
        *,
        max_line: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self._opener = opener
        self._timeout = timeout
        self._stream: OpenStream | None = None
        self._events = _Events(max_line)
        self._closed = False

    @property
    def cost(self) -> int | None:
        """Wei (expected value of tickets) paid for this stream; None before it is opened."""
        return self._stream.cost_wei if self._stream is not None else None

    @property
    def balance(self) -> float | None:
        return self._events.balance

    @property
    def orchestrator(self) -> str | None:
        return self._stream.orchestrator if self._stream else None

    @property
    def request_id(self) -> str | None:
        return self._stream.request_id if self._stream else None

    @property
    def closed(self) -> bool:
        return self._closed

    def _open(self) -> OpenStream:
        if self._stream is None:
            if self._closed:
                raise RuntimeError("stream is closed")
            self._stream = self._opener()
        return self._stream

    def __enter__(self) -> StreamResponse:
        self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        # ``timeout`` bounds the wait for each event (the first one included), however the bytes trickle.
        with deadline(self._timeout):
            return self._next()

    def _next(self) -> StreamEvent:
        ev = self._events
        while not ev.pending:
            err = ev.take_error()
            if err is not None:
                self.close()
                raise err
            if ev.done or self._closed:
                self.close()
                raise StopIteration
            stream = self._open()
            try:
                chunk = next(stream.chunks)
            except StopIteration:
                ev.done = True
                continue
            except BaseException:
                self.close()
                raise
            try:
                ev.feed(chunk, stream.orchestrator)
            except BaseException:
                self.close()
                raise
        return ev.pending.popleft()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._closed = True
        if self._stream is not None:
            self._stream.close()

    def __del__(self) -> None:
        if self._stream is not None and not self._closed:
            self.close()


class AsyncStreamResponse:
    """``async with gw.stream_async("llm", input=...) as s: async for ev in s: ...``"""

    def __init__(
        self,
        opener: Callable[[], Awaitable[AsyncOpenStream]],
        *,
        max_line: int | None = None,
        timeout: float | None = None,
    ) -> None:
        self._opener = opener
        self._timeout = timeout
        self._stream: AsyncOpenStream | None = None
        self._events = _Events(max_line)
        self._closed = False

    @property
    def cost(self) -> int | None:
        """Wei (expected value of tickets) paid for this stream; None before it is opened."""
        return self._stream.cost_wei if self._stream is not None else None

    @property
    def balance(self) -> float | None:
        return self._events.balance

    @property
    def orchestrator(self) -> str | None:
        return self._stream.orchestrator if self._stream else None

    @property
    def request_id(self) -> str | None:
        return self._stream.request_id if self._stream else None

    @property
    def closed(self) -> bool:
        return self._closed

    async def _open(self) -> AsyncOpenStream:
        if self._stream is None:
            if self._closed:
                raise RuntimeError("stream is closed")
            self._stream = await self._opener()
        return self._stream

    async def __aenter__(self) -> AsyncStreamResponse:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._timeout is None:
            return await self._anext()
        try:
            with anyio.fail_after(self._timeout), deadline(self._timeout):
                return await self._anext()
        except builtins.TimeoutError as exc:
            if isinstance(exc, LivepeerError):
                raise
            await self.aclose()
            raise TimeoutError(
                f"no event from {self.orchestrator} within {self._timeout:g}s"
            ) from None

    async def _anext(self) -> StreamEvent:
        ev = self._events
        while not ev.pending:
            err = ev.take_error()
            if err is not None:
                await self.aclose()
                raise err
            if ev.done or self._closed:
                await self.aclose()
                raise StopAsyncIteration
            stream = await self._open()
            try:
                chunk = await stream.chunks.__anext__()
            except StopAsyncIteration:
                ev.done = True
                continue
            except BaseException:
                await self.aclose()
                raise
            try:
                ev.feed(chunk, stream.orchestrator)
            except BaseException:
                await self.aclose()
                raise
        return ev.pending.popleft()

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        if self._stream is not None and not self._closed:
            self._closed = True
            await self._stream.close()
        self._closed = True
