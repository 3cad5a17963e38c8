from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from livepeer.client import AsyncStreamResponse, PaymentError, StreamResponse
from livepeer.client._streaming import AsyncOpenStream, OpenStream


class Source:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.opened = 0
        self.closed = 0
        self.sent = 0

    def _iter(self) -> Iterator[bytes]:
        for c in self.chunks:
            self.sent += 1
            yield c

    def open(self) -> OpenStream:
        self.opened += 1
        return OpenStream(self._iter(), self._close, "http://orch", "rid")

    def _close(self) -> None:
        self.closed += 1

    async def _aiter(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            self.sent += 1
            yield c

    async def aopen(self) -> AsyncOpenStream:
        self.opened += 1

        async def close() -> None:
            self.closed += 1

        return AsyncOpenStream(self._aiter(), close, "http://orch", "rid")


def test_lazy_open_and_done_closes() -> None:
    src = Source([b"data: a\n\nda", b"ta: b\n\ndata: [DONE]\n\n", b"data: after\n\n"])
    s = StreamResponse(src.open)
    assert src.opened == 0
    assert [e.data for e in s] == ["a", "b"]
    assert src.opened == 1
    assert src.closed >= 1
    assert src.sent == 2  # nothing read after [DONE]
    assert s.request_id == "rid"


def test_leaving_early_closes() -> None:
    src = Source([b"data: a\n\n", b"data: b\n\n", b"data: c\n\n"])
    with StreamResponse(src.open) as s:
        for ev in s:
            assert ev.data == "a"
            break
    assert src.closed == 1
    assert s.closed


def test_balance_event_is_an_attribute_not_an_event() -> None:
    src = Source([b'data: {"balance": 1.25}\n\ndata: {"balance": 2, "x": 1}\n\n'])
    s = StreamResponse(src.open)
    events = list(s)
    assert s.balance == 1.25
    assert [e.json() for e in events] == [{"balance": 2, "x": 1}]


def test_insufficient_balance_raises_payment_error_and_closes() -> None:
    src = Source([b'data: a\n\nevent: insufficient balance\ndata: {"balance": 0}\n\n'])
    s = StreamResponse(src.open)
    it = iter(s)
    assert next(it).data == "a"
    with pytest.raises(PaymentError):
        next(it)
    assert src.closed == 1


def test_end_without_done() -> None:
    src = Source([b"data: a\n\ndata: tail-without-blank-line\n"])
    assert [e.data for e in StreamResponse(src.open)] == ["a"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_async_stream(anyio_backend: str) -> None:
    src = Source([b"data: a\n\n", b"data: b\n\n", b"data: [DONE]\n\n"])
    s = AsyncStreamResponse(src.aopen)
    assert src.opened == 0
    async with s:
        got = [e.data async for e in s]
    assert got == ["a", "b"]
    assert src.closed == 1


@pytest.mark.anyio
async def test_async_early_exit_closes() -> None:
    src = Source([b"data: a\n\n", b"data: b\n\n"])
    async with AsyncStreamResponse(src.aopen) as s:
        async for _ in s:
            break
    assert src.closed == 1
