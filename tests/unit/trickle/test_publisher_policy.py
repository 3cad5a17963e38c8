"""Publisher retry, failure and drop policies, with an in-process httpx transport as the server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import httpx
import pytest

from livepeer.trickle import TrickleError, TricklePublisher, TrickleTimeout

pytestmark = pytest.mark.anyio

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class _Transport(httpx.AsyncBaseTransport):
    """Like httpx.MockTransport, but the handler decides whether and how to read the request body."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.handler(request)


def _client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=_Transport(handler))


async def test_retry_only_when_no_byte_was_consumed() -> None:
    bodies: dict[str, list[bytes]] = {}
    attempts: dict[str, int] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "DELETE":
            return httpx.Response(200)
        attempts[path] = attempts.get(path, 0) + 1
        if path == "/c/0" and attempts[path] == 1:
            raise httpx.ConnectError("refused before any byte")  # nothing consumed: retried
        body = await request.aread()
        if path == "/c/1":
            raise httpx.ReadError("reset after the body")  # consumed: not retried
        bodies.setdefault(path, []).append(body)
        return httpx.Response(200, headers={"Lp-Trickle-Seq": path.rsplit("/", 1)[1]})

    async with (
        _client(handler) as client,
        TricklePublisher("http://t/c", start_seq=0, client=client, preconnect=False) as pub,
    ):
        await pub.write(b"zero", wait=True)
        with pytest.raises(TrickleError, match="ReadError"):
            await pub.write(b"one", wait=True)
        await pub.write(b"two", wait=True)
        assert pub.stats.retries == 1
        assert pub.stats.failed_segments == 1
        assert pub.error is None
    assert attempts["/c/0"] == 2
    assert attempts["/c/1"] == 1
    assert bodies == {"/c/0": [b"zero"], "/c/2": [b"two"]}


async def test_consecutive_failures_are_terminal() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(200)
        await request.aread()
        return httpx.Response(500, text="boom")

    async with (
        _client(handler) as client,
        TricklePublisher(
            "http://t/c", start_seq=0, client=client, preconnect=False, max_consecutive_failures=3
        ) as pub,
    ):
        for data in (b"a", b"b", b"c"):
            with pytest.raises(TrickleError):
                await pub.write(data, wait=True)
        assert pub.error is not None
        assert "3 consecutive" in str(pub.error)
        with pytest.raises(TrickleError, match="3 consecutive"):
            await pub.write(b"d")


async def test_a_success_resets_the_failure_count() -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await request.aread()
        return httpx.Response(200 if calls % 2 == 0 else 502)

    async with (
        _client(handler) as client,
        TricklePublisher(
            "http://t/c",
            start_seq=0,
            client=client,
            preconnect=False,
            max_consecutive_failures=2,
            delete_on_close=False,
        ) as pub,
    ):
        for i in range(6):
            try:
                await pub.write(b"x", wait=True)
            except TrickleError:
                assert i % 2 == 0
        assert pub.error is None


async def test_slow_server_drops_segment_and_memory_stays_bounded() -> None:
    release = anyio.Event()
    seen: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(200)
        # Read one chunk, then stall like a server that stopped reading.
        async for chunk in request.stream:  # type: ignore[union-attr]
            seen.append(len(chunk))
            await release.wait()
        return httpx.Response(200)

    async with (
        _client(handler) as client,
        TricklePublisher(
            "http://t/c",
            start_seq=0,
            client=client,
            preconnect=False,
            buffer_size=64 * 1024,
            write_timeout=0.2,
        ) as pub,
    ):
        async with pub.segment() as seg:
            with anyio.fail_after(5):
                for _ in range(20):
                    await seg.write(b"x" * 32 * 1024)  # 640 KiB into a stalled upload
            assert seg.dropped
            assert seg.size <= 64 * 1024 + 32 * 1024  # what was accepted before the drop
        assert pub.stats.dropped_segments == 1
        release.set()
    assert sum(seen) <= 32 * 1024


async def test_a_chunk_larger_than_the_buffer_goes_in_once_the_buffer_is_empty() -> None:
    bodies: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(200)
        bodies.append(await request.aread())
        return httpx.Response(200)

    async with _kib_buffer(handler) as pub:
        for first in (b"", b"a" * 512):  # the buffer starts empty / holds bytes still to upload
            async with pub.segment() as seg:
                if first:
                    await seg.write(first)
                await seg.write(b"b" * 4096)
            await seg.wait()
            assert not seg.dropped
        assert pub.stats.dropped_segments == 0
    assert bodies == [b"b" * 4096, b"a" * 512 + b"b" * 4096]


@contextlib.asynccontextmanager
async def _kib_buffer(handler: Handler, **options: float) -> AsyncIterator[TricklePublisher]:
    """A publisher with a 1 KiB buffer on ``handler``, no preconnect: the buffer-accounting tests."""
    async with (
        _client(handler) as client,
        TricklePublisher(
            "http://t/c",
            start_seq=0,
            client=client,
            preconnect=False,
            buffer_size=1024,
            **options,  # type: ignore[arg-type]
        ) as pub,
    ):
        yield pub


async def test_the_buffer_takes_writes_up_to_exactly_its_size() -> None:
    release = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method != "DELETE":
            await release.wait()  # a server that reads nothing yet
        return httpx.Response(200)

    async with _kib_buffer(handler, write_timeout=0.2) as pub:
        async with pub.segment() as seg:
            await seg.write(b"x" * 512)
            await seg.write(b"x" * 512)
            assert not seg.dropped  # exactly full: taken without waiting
            await seg.write(b"x")
            assert seg.dropped  # one byte more waited for room, then the segment was dropped
            assert seg.size == 1024
        release.set()


async def test_a_waiting_write_goes_in_when_the_upload_frees_exactly_enough_room() -> None:
    release = anyio.Event()
    seen: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(200)
        async for chunk in request.stream:  # type: ignore[union-attr]
            seen.append(len(chunk))
            await release.wait()  # one chunk read, then a stall
        return httpx.Response(200)

    async with _kib_buffer(handler, write_timeout=0.2) as pub:
        async with pub.segment() as seg:
            for _ in range(3):  # the third waits for room; the upload takes one 512-byte chunk
                await seg.write(b"x" * 512)
            assert not seg.dropped
            assert seg.size == 1536
        release.set()
        await seg.wait()
    assert sum(seen) == 1536


async def test_slow_server_raise_policy() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(30)
        return httpx.Response(200)

    async with (
        _client(handler) as client,
        TricklePublisher(
            "http://t/c",
            start_seq=0,
            client=client,
            preconnect=False,
            delete_on_close=False,
            buffer_size=1024,
            write_timeout=0.1,
            drop_policy="raise",
            close_timeout=0.2,
        ) as pub,
    ):

        async def fill() -> None:
            async with pub.segment() as seg:
                for _ in range(10):
                    await seg.write(b"y" * 1024)

        with pytest.raises(TrickleTimeout):
            await fill()
        assert pub.stats.dropped_segments == 1
        assert pub.error is None  # the publisher carries on with the next segment


async def test_inflight_limit_drops_the_oldest_upload() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        await anyio.sleep(30)  # the answer never comes
        return httpx.Response(200)

    async with (
        _client(handler) as client,
        TricklePublisher(
            "http://t/c",
            start_seq=0,
            client=client,
            preconnect=False,
            delete_on_close=False,
            max_inflight=2,
            write_timeout=0.1,
            close_timeout=0.2,
        ) as pub,
    ):
        for i in range(4):
            assert await pub.write(f"s{i}".encode()) == i
        assert pub.stats.dropped_segments == 2
        assert pub.stats.segments == 4
