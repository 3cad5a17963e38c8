"""``TricklePublisher`` details the mutation run found unpinned (docs/testing.md, "publisher (2026-12-04)").

Error fields (``url``, ``status_code``, ``limit``), the timeouts given to each request, ``GET /next``
backoff delays, buffer accounting and the close sequence, against an in-process httpx transport whose
handler records every request. Backoff sleeps are recorded, not slept.
"""

from __future__ import annotations

import gc
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

import livepeer.trickle._publisher as publisher_module
from livepeer.trickle import (
    TrickleChannelNotFound,
    TrickleClosed,
    TrickleError,
    TrickleProtocolError,
    TricklePublisher,
    TrickleSegmentTooLarge,
    TrickleTimeout,
)
from livepeer.trickle._publisher import PublisherStats

pytestmark = pytest.mark.anyio

URL = "http://t/c"
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass
class Sent:
    method: str
    path: str
    headers: httpx.Headers
    timeout: object


@dataclass
class Server:
    """Answers from ``handler`` (200 after reading the body by default) and records every request."""

    handler: Handler | None = None
    sent: list[Sent] = field(default_factory=list)

    def paths(self, method: str) -> list[str]:
        return [s.path for s in self.sent if s.method == method]


class _Transport(httpx.AsyncBaseTransport):
    def __init__(self, server: Server) -> None:
        self.server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.server.sent.append(
            Sent(
                request.method,
                request.url.path,
                request.headers,
                request.extensions.get("timeout"),
            )
        )
        if self.server.handler is not None:
            return await self.server.handler(request)
        await request.aread()
        return httpx.Response(200)


@asynccontextmanager
async def _publisher(server: Server, **options: object) -> AsyncIterator[TricklePublisher]:
    options = {"start_seq": 0, "preconnect": False, **options}
    async with (
        httpx.AsyncClient(transport=_Transport(server)) as client,
        TricklePublisher(URL, client=client, **options) as pub,  # type: ignore[arg-type]
    ):
        yield pub


def _timeout(connect: float) -> dict[str, float | None]:
    return {"connect": connect, "read": None, "write": None, "pool": connect}


# -- defaults and the client the publisher makes itself ---------------------------------------------------


def test_defaults() -> None:
    pub = TricklePublisher(URL)
    assert pub.buffer_size == 4 * 1024 * 1024
    assert (pub.write_timeout, pub.close_timeout) == (5.0, 5.0)
    assert (pub.connect_timeout, pub.response_timeout) == (10.0, 30.0)
    assert (pub.max_inflight, pub.max_consecutive_failures) == (3, 3)
    assert PublisherStats() == PublisherStats(0, 0, 0, 0, 0)


async def test_own_client_skips_tls_verification_and_is_closed_even_when_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deleted: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await request.aread()
        else:
            await anyio.lowlevel.checkpoint()  # where a cancellation would land
            deleted.append(request.url.path)
        return httpx.Response(200)

    server = Server(handler)
    made: list[tuple[bool, httpx.AsyncClient]] = []

    def new_client(*, verify: bool) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=_Transport(server))
        made.append((verify, client))
        return client

    monkeypatch.setattr(publisher_module, "new_client", new_client)
    with anyio.CancelScope() as scope:
        async with TricklePublisher(URL, start_seq=0, preconnect=False) as pub:
            await pub.write(b"x", wait=True)
            scope.cancel()
            await anyio.sleep_forever()  # cancelled: aclose runs under cancellation
    [(verify, client)] = made
    assert verify is False  # orchestrators serve self-signed certificates
    # The DELETE and the client close are shielded from the caller's cancellation.
    assert deleted == ["/c"]
    assert client.is_closed


# -- what each request carries ---------------------------------------------------------------------------


async def test_every_request_gets_the_connect_timeout_and_no_read_timeout() -> None:
    server = Server()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/c/next":
            return httpx.Response(200, headers={"Lp-Trickle-Latest": "4"})
        await request.aread()
        return httpx.Response(200)

    server.handler = handler
    async with _publisher(server, start_seq=-1, connect_timeout=7.0) as pub:
        assert await pub.write(b"x", wait=True) == 4
    assert [(s.method, s.path) for s in server.sent] == [
        ("GET", "/c/next"),
        ("POST", "/c/4"),
        ("DELETE", "/c"),
    ]
    assert [s.timeout for s in server.sent] == [_timeout(7.0)] * 3


async def test_writes_are_streamed_in_256_kib_chunks_as_they_come() -> None:
    chunks: list[int] = []
    first = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            async for chunk in request.stream:  # type: ignore[union-attr]
                chunks.append(len(chunk))
                first.set()
        return httpx.Response(200)

    async with _publisher(Server(handler)) as pub:
        async with pub.segment() as seg:
            await anyio.wait_all_tasks_blocked()  # the upload waits for its first chunk
            await seg.write(b"a")
            with anyio.fail_after(5):
                await first.wait()  # the server has the byte before the segment ends
            await seg.write(bytes(600 * 1024))
        await seg.wait()
        assert pub.stats.bytes == 1 + 600 * 1024
        assert seg.size == 1 + 600 * 1024
    assert chunks == [1, 256 * 1024, 256 * 1024, 88 * 1024]


async def test_a_memoryview_is_copied_before_write_returns() -> None:
    bodies: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            bodies.append(await request.aread())
        return httpx.Response(200)

    buf = bytearray(b"abc" * 100_000)  # more than one chunk
    async with _publisher(Server(handler)) as pub:
        async with pub.segment() as seg:
            await seg.write(memoryview(buf))
            buf[:] = b"z" * len(buf)  # the caller reuses its buffer
            await seg.write(bytearray(b"tail"))
        await seg.wait()
    assert bodies == [b"abc" * 100_000 + b"tail"]


# -- buffer accounting -----------------------------------------------------------------------------------


async def test_a_waiting_write_keeps_waiting_while_the_room_freed_is_too_small() -> None:
    release = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            async for _ in request.stream:  # type: ignore[union-attr]
                await release.wait()  # one 512-byte chunk read, then a stall
        return httpx.Response(200)

    async with (
        _publisher(Server(handler), buffer_size=1024, write_timeout=0.2) as pub,
        pub.segment() as seg,
    ):
        await seg.write(b"x" * 512)
        await seg.write(b"x" * 512)
        await seg.write(b"x" * 768)  # 512 freed while it waits: still no room, dropped
        assert seg.dropped
        assert seg.size == 1024
        release.set()


async def test_a_dropped_segment_lets_go_of_the_buffered_bytes_at_once() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await anyio.sleep_forever()  # reads nothing
        return httpx.Response(200)

    def buffered(obj: bytes) -> bool:
        # Referrers, not refcounts: a line tracer (the mutation runner's) holds references of its own.
        return any(isinstance(r, deque) for r in gc.get_referrers(obj))

    data = bytes(range(256)) * 2
    async with (
        _publisher(Server(handler), buffer_size=1024, write_timeout=0.1) as pub,
        pub.segment() as seg,
    ):
        await seg.write(data)  # a whole bytes chunk is buffered as is, not copied
        assert buffered(data)
        await seg.write(bytes(1024))  # no room: dropped
        assert seg.dropped
        assert not buffered(data)  # no await since the drop: dropping itself let go of it


async def test_an_error_answer_ends_a_write_waiting_for_room_at_once() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            async for _ in request.stream:  # type: ignore[union-attr]
                # After one chunk, once the writer waits for room again.
                await anyio.wait_all_tasks_blocked()
                return httpx.Response(404)
        return httpx.Response(200)

    async with (
        _publisher(Server(handler), buffer_size=1024, write_timeout=30) as pub,
        pub.segment() as seg,
    ):
        await seg.write(b"x" * 600)
        await seg.write(b"x" * 424)
        with anyio.fail_after(5), pytest.raises(TrickleChannelNotFound) as caught:
            await seg.write(b"x" * 1024)  # a full buffer's worth: waits for an empty one
        assert caught.value.url == URL
        assert seg.size == 1024
        with pytest.raises(TrickleChannelNotFound):
            await seg.write(b"")  # even an empty write reports the terminal error


async def test_a_drop_aborts_the_upload_at_once() -> None:
    cancelled = anyio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            try:
                async for _ in request.stream:  # type: ignore[union-attr]
                    await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                cancelled.set()
                raise
        return httpx.Response(200)

    async with (
        _publisher(Server(handler), buffer_size=1024, write_timeout=0.1) as pub,
        pub.segment() as seg,
    ):
        for _ in range(3):  # the upload takes the first, the third finds no room
            await seg.write(b"x" * 1024)
        assert seg.dropped
        with anyio.fail_after(5):
            await cancelled.wait()
        await seg.wait()  # a drop is no error of the segment


# -- error fields ----------------------------------------------------------------------------------------


async def test_closed_and_unentered_publisher_errors_carry_the_url() -> None:
    async with _publisher(Server()) as pub:
        async with pub.segment() as seg:
            pass
        with pytest.raises(TrickleClosed) as closed_segment:
            await seg.write(b"x")
    with pytest.raises(TrickleClosed) as closed_pub:
        await pub.write(b"x")
    with pytest.raises(TrickleClosed) as reentered:
        async with pub:
            pass
    with pytest.raises(TrickleError) as unentered:
        await TricklePublisher(URL, start_seq=0).write(b"x")
    for caught in (closed_segment, closed_pub, reentered, unentered):
        assert caught.value.url == URL
    assert "async with" in str(unentered.value)


async def test_raise_policy_timeout_carries_the_url() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await anyio.sleep_forever()
        return httpx.Response(200)

    options = {"buffer_size": 1024, "write_timeout": 0.1, "drop_policy": "raise"}
    async with _publisher(Server(handler), **options) as pub, pub.segment() as seg:
        await seg.write(b"x" * 1024)
        with pytest.raises(TrickleTimeout) as caught:
            await seg.write(b"x")
    assert caught.value.url == URL


async def test_flush_timeout_carries_the_url() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await anyio.sleep_forever()
        return httpx.Response(200)

    async with (
        _publisher(Server(handler), response_timeout=0.1, close_timeout=0.1) as pub,
        pub.segment(),
    ):
        with pytest.raises(TrickleTimeout) as caught:
            await pub.flush()
    assert caught.value.url == URL


async def test_post_errors_carry_the_segment_url_and_status() -> None:
    answers = iter([httpx.Response(413), httpx.Response(400), httpx.Response(200)])

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(200)
        if request.url.path == "/c/2":
            await request.aread()
            raise httpx.ReadError("reset after the body")
        return next(answers)

    async with _publisher(Server(handler), max_consecutive_failures=5) as pub:
        with pytest.raises(TrickleSegmentTooLarge) as too_large:
            await pub.write(b"x", wait=True)
        with pytest.raises(TrickleProtocolError) as refused:
            await pub.write(b"x", wait=True)
        with pytest.raises(TrickleError) as reset:
            await pub.write(b"x", wait=True)
    assert (too_large.value.url, too_large.value.limit) == ("http://t/c/0", 0)
    assert (refused.value.url, refused.value.status_code) == ("http://t/c/1", 400)
    assert reset.value.url == "http://t/c/2"
    assert "ReadError" in str(reset.value)


async def test_an_unexpected_exception_fails_the_segment_not_the_publisher() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise RuntimeError("boom")
        return httpx.Response(200)

    server = Server(handler)
    async with _publisher(server) as pub:
        with pytest.raises(TrickleError, match="boom") as caught:
            await pub.write(b"x", wait=True)
        assert caught.value.url == URL
        assert pub.stats.failed_segments == 1
        assert pub.stats.retries == 0
        assert pub.error is None
    assert server.paths("POST") == ["/c/0"]


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [(404, {}, TrickleChannelNotFound), (200, {"Lp-Trickle-Closed": "1"}, TrickleClosed)],
)
async def test_terminal_post_answers_carry_the_channel_url(
    status: int, headers: dict[str, str], error: type[TrickleError]
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(status, headers=headers)
        return httpx.Response(200)

    async with _publisher(Server(handler)) as pub:
        with pytest.raises(error) as caught:
            await pub.write(b"x", wait=True)
        assert pub.error is caught.value
    assert caught.value.url == URL
    if status == 404:
        assert caught.value.status_code == 404


# -- retries and failure counting ------------------------------------------------------------------------


async def test_a_500_before_the_first_byte_is_retried() -> None:
    answers = iter([500, 200])
    server = Server()

    async def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status == 200:
            await request.aread()
        return httpx.Response(status)

    server.handler = handler
    async with _publisher(server, delete_on_close=False) as pub:
        await pub.write(b"x", wait=True)
        assert pub.stats.retries == 1
        assert pub.stats.failed_segments == 0
    assert server.paths("POST") == ["/c/0", "/c/0"]


async def test_an_empty_segment_answered_200_resets_the_failure_count() -> None:
    answers = iter([400, 200, 400])

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(next(answers, 200))

    async with _publisher(Server(handler), max_consecutive_failures=2) as pub:
        with pytest.raises(TrickleProtocolError):
            await pub.write(b"x", wait=True)
        await pub.write(b"", wait=True)
        with pytest.raises(TrickleProtocolError):
            await pub.write(b"x", wait=True)
        assert pub.error is None


async def test_an_answered_preconnect_does_not_reset_the_failure_count() -> None:
    failed = anyio.Event()
    calls: dict[str, int] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls[path] = calls.get(path, 0) + 1
        if path == "/c/1" and calls[path] == 1:
            await failed.wait()
            return httpx.Response(200)  # the preconnect, answered without its body
        await request.aread()
        return httpx.Response(200 if request.method == "DELETE" else 400)

    async with _publisher(Server(handler), preconnect=True, max_consecutive_failures=2) as pub:
        with pytest.raises(TrickleProtocolError):
            await pub.write(b"x", wait=True)
        failed.set()
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(TrickleProtocolError):
            await pub.write(b"x", wait=True)
        assert pub.error is not None
        assert "2 consecutive" in str(pub.error)


async def test_a_failed_preconnect_is_replaced_and_a_live_one_is_used() -> None:
    calls: dict[str, int] = {}
    bodies: dict[str, bytes] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls[path] = calls.get(path, 0) + 1
        if path == "/c/1" and calls[path] == 1:
            raise httpx.ConnectError("refused")
        if request.method == "POST":
            bodies[path] = await request.aread()
        return httpx.Response(200)

    async with _publisher(Server(handler), preconnect=True) as pub:
        await pub.write(b"zero", wait=True)
        await anyio.wait_all_tasks_blocked()  # the preconnect to /c/1 failed, the one to /c/2 waits
        await pub.write(b"one", wait=True)
        await anyio.wait_all_tasks_blocked()
        await pub.write(b"two", wait=True)
        assert pub.stats.retries == 0
        assert pub.stats.failed_segments == 0
    assert bodies == {"/c/0": b"zero", "/c/1": b"one", "/c/2": b"two"}
    assert calls["/c/1"] == 2  # the failed preconnect, then a fresh POST
    assert calls["/c/2"] == 1  # the preconnect carried the segment


# -- segments, in-flight limit and close -----------------------------------------------------------------


async def test_one_segment_at_a_time() -> None:
    async with _publisher(Server()) as pub:
        opened: list[int] = []

        async def second() -> None:
            async with pub.segment() as seg:
                opened.append(seg.seq)

        async with anyio.create_task_group() as tg:
            async with pub.segment() as first:
                tg.start_soon(second)
                await anyio.wait_all_tasks_blocked()
                assert opened == []  # waits for the first segment to close
            assert first.seq == 0
        assert opened == [1]


async def test_a_terminal_error_fails_a_segment_waiting_to_open() -> None:
    answer = anyio.Event()
    errors: list[BaseException] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await answer.wait()
            return httpx.Response(404)
        return httpx.Response(200)

    async with _publisher(Server(handler)) as pub:

        async def second() -> None:
            try:
                async with pub.segment():
                    pass
            except TrickleError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg, pub.segment() as first:
            tg.start_soon(second)
            await anyio.wait_all_tasks_blocked()
            answer.set()
            with pytest.raises(TrickleChannelNotFound):
                await first.wait()
        assert [type(e) for e in errors] == [TrickleChannelNotFound]
        with anyio.fail_after(5), pytest.raises(TrickleChannelNotFound):
            async with pub.segment():  # does not wait for a lock first
                pass


async def test_an_open_segment_fails_at_once_once_the_channel_is_gone() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if request.method == "POST" else 200)

    async with _publisher(Server(handler)) as pub, pub.segment() as first:
        with pytest.raises(TrickleChannelNotFound):
            await first.wait()
        with anyio.fail_after(5), pytest.raises(TrickleChannelNotFound):
            async with pub.segment():  # the first is still open: no waiting for it
                pass


async def test_a_failed_open_releases_the_segment_lock() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, text="5")])

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/c/next":
            return next(answers)
        await request.aread()
        return httpx.Response(200)

    async with _publisher(Server(handler), start_seq=-1, max_consecutive_failures=1) as pub:
        with pytest.raises(TrickleError):
            await pub.write(b"x")
        with anyio.fail_after(5):
            assert await pub.write(b"x", wait=True) == 5


async def test_the_inflight_limit_drops_the_oldest_and_counts_only_real_drops() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await request.aread()
            await anyio.sleep_forever()  # never answered
        return httpx.Response(200)

    async with _publisher(
        Server(handler), max_inflight=2, write_timeout=0.1, close_timeout=0.1
    ) as pub:
        segs = []
        for _ in range(3):
            async with pub.segment() as seg:
                await seg.write(b"x")
            segs.append(seg)
        assert [s.dropped for s in segs] == [True, False, False]
        assert pub.stats.dropped_segments == 1


async def test_waiting_for_an_answered_upload_is_no_drop() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        # Answer only once the next segment waits for this upload (max_inflight=1).
        await anyio.wait_all_tasks_blocked()
        return httpx.Response(200)

    server = Server(handler)
    async with _publisher(server, max_inflight=1) as pub:
        for _i in range(3):
            await pub.write(b"x")
        await pub.flush()
        assert pub.stats.dropped_segments == 0
        assert pub.stats.segments == 3
    assert server.paths("POST") == ["/c/0", "/c/1", "/c/2"]


async def test_close_aborts_the_preconnect_before_waiting_for_uploads() -> None:
    pre_cancelled = anyio.Event()
    answered: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/c/1":
            try:
                await request.aread()
            except anyio.get_cancelled_exc_class():
                pre_cancelled.set()
                raise
        elif request.method == "POST":
            await request.aread()
            with anyio.move_on_after(2):
                await pre_cancelled.wait()
            answered.append(f"{path} after the preconnect: {pre_cancelled.is_set()}")
        return httpx.Response(200)

    async with (
        _publisher(Server(handler), preconnect=True, close_timeout=5) as pub,
        pub.segment() as seg,
    ):
        await seg.write(b"x")
    assert answered == ["/c/0 after the preconnect: True"]


async def test_close_stops_waiting_for_unanswered_uploads_after_close_timeout() -> None:
    server = Server()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            await request.aread()
            await anyio.sleep_forever()
        return httpx.Response(200)

    server.handler = handler
    with anyio.fail_after(5):
        async with _publisher(server, close_timeout=0.1) as pub:
            await pub.write(b"x")
    assert server.paths("DELETE") == ["/c"]


# -- GET /next -------------------------------------------------------------------------------------------


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays ``anyio.sleep`` was asked for; each returns after one checkpoint."""
    asked: list[float] = []

    async def sleep(delay: float) -> None:
        asked.append(delay)
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(anyio, "sleep", sleep)
    return asked


async def test_next_backoff_doubles_from_half_a_second_up_to_four(sleeps: list[float]) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    server = Server(handler)
    async with _publisher(server, start_seq=-1, max_consecutive_failures=6) as pub:
        with pytest.raises(TrickleError) as caught:
            await pub.write(b"x")
        assert pub.error is None  # a server that failed to answer is no terminal state
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert server.paths("GET") == ["/c/next"] * 6
    assert caught.value.url == "http://t/c/next"
    cause = caught.value.__cause__
    assert isinstance(cause, TrickleProtocolError)
    assert (cause.url, cause.status_code) == ("http://t/c/next", 503)


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [(404, {}, TrickleChannelNotFound), (200, {"Lp-Trickle-Closed": "1"}, TrickleClosed)],
)
async def test_next_terminal_answers_carry_the_channel_url(
    status: int, headers: dict[str, str], error: type[TrickleError], sleeps: list[float]
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    async with _publisher(Server(handler), start_seq=-1) as pub:
        with pytest.raises(error) as caught:
            await pub.write(b"x")
        assert pub.error is caught.value
    assert caught.value.url == URL
    assert caught.value.status_code == (404 if status == 404 else None)
    assert sleeps == []


async def test_next_without_a_seq_is_a_protocol_error_on_the_next_url() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="soon")

    async with _publisher(Server(handler), start_seq=-1) as pub:
        with pytest.raises(TrickleProtocolError) as caught:
            await pub.write(b"x")
    assert caught.value.url == "http://t/c/next"
