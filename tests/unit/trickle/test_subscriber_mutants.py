"""``TrickleSubscriber`` details the mutation run found unpinned (docs/testing.md, "subscriber (2026-12-04)").

The defaults, the timeout each request carries, error fields, which responses get closed (also when the
reader is cancelled) and how much of an error body is read, against an in-process httpx transport that
records every request (path, timeout, when) and every response body (chunks handed out, closed). The
deadlines, backoff, ``ahead_wait`` and re-issue rules run on trio's ``MockClock`` with autojump: virtual
time moves only while every task waits, so those tests assert the exact delays and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import httpx
import pytest
from trio.testing import MockClock

import livepeer.trickle._subscriber as subscriber_module
from livepeer.trickle import (
    TrickleError,
    TrickleProtocolError,
    TrickleSegmentTooLarge,
    TrickleSubscriber,
    TrickleTimeout,
)
from livepeer.trickle._subscriber import Segment

pytestmark = pytest.mark.anyio

URL = "http://t/c"
Answer = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Body(httpx.AsyncByteStream):
    """A response body from ``parts``: bytes are sent, an Event is waited for, an exception is raised."""

    def __init__(self, *parts: bytes | anyio.Event | Exception) -> None:
        self.parts = parts
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            if isinstance(part, anyio.Event):
                await part.wait()
            elif isinstance(part, Exception):
                raise part
            else:
                self.sent += 1
                yield part

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()  # a cancellation lands here unless the close is shielded
        self.closed = True


class Server(httpx.AsyncBaseTransport):
    """Answers ``GET /c/<key>`` with the next reply queued for key, else ``default``, else 404."""

    def __init__(self, default: Answer | None = None) -> None:
        self.default = default
        self.replies: dict[str, list[httpx.Response | Answer]] = {}
        self.paths: list[str] = []
        self.timeouts: list[object] = []
        self.times: list[float] = []
        self.closed = False

    def queue(self, key: str, *replies: httpx.Response | Answer) -> None:
        self.replies.setdefault(key, []).extend(replies)

    def elapsed(self) -> list[float]:
        return [t - self.times[0] for t in self.times]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[-1]
        self.paths.append(key)
        self.timeouts.append(request.extensions.get("timeout"))
        self.times.append(anyio.current_time())
        queued = self.replies.get(key)
        reply = queued.pop(0) if queued else (self.default or _not_found)
        if isinstance(reply, httpx.Response):
            return reply
        return await reply(request)

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()  # as Body.aclose
        self.closed = True


async def _not_found(request: httpx.Request) -> httpx.Response:
    return httpx.Response(404)


async def hang(request: httpx.Request) -> httpx.Response:
    await anyio.Event().wait()  # no answer until the request is cancelled
    raise AssertionError("unreachable")


async def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


async def busy(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)


def answer(status: int, body: Body | None = None, **headers: str) -> httpx.Response:
    """``headers`` with ``_`` for ``-``: ``Lp_Trickle_Latest="3"``."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return httpx.Response(status, headers=named, stream=body or Body())


def segment(seq: int, body: Body) -> httpx.Response:
    return answer(200, body, Lp_Trickle_Seq=str(seq), Content_Type="video/mp2t")


@asynccontextmanager
async def subscribed(server: Server, **options: object) -> AsyncIterator[TrickleSubscriber]:
    options = {"start_seq": 0, **options}
    async with (
        httpx.AsyncClient(transport=server) as client,
        TrickleSubscriber(URL, client=client, **options) as sub,  # type: ignore[arg-type]
    ):
        yield sub


async def next_segment(sub: TrickleSubscriber) -> Segment:
    with anyio.fail_after(500):  # virtual seconds in the MockClock tests
        got = await sub.next()
    assert got is not None
    return got


def _timeout(connect: float) -> dict[str, float | None]:
    return {"connect": connect, "read": None, "write": None, "pool": connect}


# -- defaults and the client the subscriber makes itself ----------------------------------------------------


def test_defaults() -> None:
    sub = TrickleSubscriber(URL)
    assert sub.next_seq == -2
    assert (sub.max_retries, sub.retry_backoff, sub.max_backoff) == (5, 0.5, 8.0)
    assert (sub.ahead_wait, sub.reissue_interval) == (0.25, 20.0)
    assert (sub.connect_timeout, sub.read_timeout, sub.segment_timeout) == (10.0, 30.0, 360.0)
    assert (sub.max_segment_size, sub.skip_empty) == (None, True)


async def test_own_client_skips_tls_verification_and_is_closed_even_when_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = Server()
    server.queue("0", segment(0, Body(b"zero")))
    made: list[bool] = []

    def new_client(*, verify: bool) -> httpx.AsyncClient:
        made.append(verify)
        return httpx.AsyncClient(transport=server)

    monkeypatch.setattr(subscriber_module, "new_client", new_client)
    with anyio.CancelScope() as scope:
        async with TrickleSubscriber(URL, start_seq=0) as sub:
            assert (await next_segment(sub)).seq == 0
            scope.cancel()
            await anyio.sleep_forever()  # cancelled: aclose runs under cancellation
    assert made == [False]  # orchestrators serve self-signed certificates
    assert server.closed


async def test_a_client_that_cannot_be_built_fails_the_async_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def new_client(*, verify: bool) -> httpx.AsyncClient:
        raise OSError("no CA bundle")

    monkeypatch.setattr(subscriber_module, "new_client", new_client)
    entered = False
    with pytest.raises(OSError, match="no CA bundle"):
        async with TrickleSubscriber(URL, start_seq=0):
            entered = True
    assert not entered


# -- segments: fields, end, errors and closing ------------------------------------------------------------


async def test_a_segment_read_to_its_end_is_done() -> None:
    server = Server()
    server.queue("0", segment(0, Body(b"ab", b"cd")))
    async with subscribed(server) as sub:
        seg = await next_segment(sub)
        assert seg.mime_type == "video/mp2t"
        assert not seg.done
        assert await seg.read() == b"abcd"
        assert seg.done


@pytest.mark.parametrize("failure", ["reset", "too large"])
async def test_a_failed_read_closes_the_segment_and_names_it(failure: str) -> None:
    server = Server()
    if failure == "reset":
        body = Body(b"12345", httpx.ReadError("connection reset"))
    else:
        body = Body(b"12345", b"678901")
    server.queue("3", segment(3, body))
    async with subscribed(server, start_seq=3, max_segment_size=10) as sub:
        seg = await next_segment(sub)
        with pytest.raises(TrickleError) as caught:
            await seg.read()
        assert isinstance(caught.value, TrickleSegmentTooLarge) == (failure == "too large")
        assert caught.value.url == "http://t/c/3"
        assert seg.done
        assert body.closed  # before the subscriber moves on or closes


async def test_a_cancelled_iteration_closes_the_segment_and_its_response() -> None:
    server = Server()
    body = Body(b"first", anyio.Event(), b"never")
    server.queue("0", segment(0, body))
    async with subscribed(server) as sub:
        seg = await next_segment(sub)
        got: list[bytes] = []

        async def iterate() -> None:
            async for chunk in seg:
                got.append(chunk)

        async with anyio.create_task_group() as tg:
            tg.start_soon(iterate)
            await anyio.wait_all_tasks_blocked()  # waiting for the second chunk
            tg.cancel_scope.cancel()
        assert got == [b"first"]
        assert seg.done
        assert body.closed  # the close is shielded from the cancellation that caused it


async def test_closing_a_segment_midway_closes_its_response() -> None:
    server = Server()
    body = Body(b"first", anyio.Event())
    server.queue("0", segment(0, body))
    async with subscribed(server) as sub:
        seg = await next_segment(sub)
        await seg.aclose()
        assert seg.done
        assert body.closed


async def test_closing_the_subscriber_closes_a_preconnected_segment() -> None:
    server = Server()
    zero, one = Body(b"zero", anyio.Event()), Body(b"one", anyio.Event())
    server.queue("0", segment(0, zero))
    server.queue("1", segment(1, one))
    async with subscribed(server) as sub:
        await next_segment(sub)
        await anyio.wait_all_tasks_blocked()  # the preconnect has segment 1's first byte
        assert not one.closed
    assert zero.closed
    assert one.closed


async def test_every_answer_that_is_not_delivered_is_closed() -> None:
    server = Server()
    bodies = [Body(b"busy"), Body(b"gone"), Body(), Body(b"bye"), Body(b"x")]
    server.queue("0", answer(503, bodies[0]), answer(470, bodies[1], Lp_Trickle_Latest="1"))
    server.queue("1", segment(1, bodies[2]))  # empty: skipped
    server.queue("2", answer(200, bodies[3], Lp_Trickle_Closed="terminated"))
    async with subscribed(server, retry_backoff=0.0) as sub:
        with anyio.fail_after(5):
            assert await sub.next() is None
        assert sub.end_reason == "closed"
        assert [b.closed for b in bodies[:4]] == [True] * 4
    server = Server()
    server.queue("0", answer(404, bodies[4]))
    async with subscribed(server) as sub:
        with anyio.fail_after(5):
            assert await sub.next() is None
        assert bodies[4].closed


async def test_a_cancelled_wait_for_the_first_byte_still_closes_the_response() -> None:
    server = Server()
    body = Body(anyio.Event())  # headers, then nothing
    server.queue("0", segment(0, body))
    async with httpx.AsyncClient(transport=server) as client:
        sub = TrickleSubscriber(URL, client=client, start_seq=0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(sub.next)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        assert body.closed
        await sub.aclose()


async def test_an_error_body_is_read_up_to_512_bytes_only() -> None:
    server = Server()
    body = Body(b"a" * 512, b"b" * 10, b"c" * 10)
    server.queue("0", answer(400, body))
    async with subscribed(server) as sub:
        with anyio.fail_after(5), pytest.raises(TrickleProtocolError) as caught:
            await sub.next()
    assert f"b'{'a' * 512}'" in str(caught.value)
    assert body.sent == 1  # no chunk asked for once the limit was reached
    assert body.closed


# -- 470 --------------------------------------------------------------------------------------------------


async def test_a_470_naming_seq_0_moves_there() -> None:
    server = Server()
    server.queue("-2", answer(470, Lp_Trickle_Latest="0"))
    server.queue("0", segment(0, Body(b"zero")))
    async with subscribed(server, start_seq=-2) as sub:
        assert (await next_segment(sub)).seq == 0
        assert sub.skipped == 0


async def test_a_470_for_seq_0_counts_the_segments_skipped() -> None:
    server = Server()
    server.queue("0", answer(470, Lp_Trickle_Latest="5"))
    server.queue("5", segment(5, Body(b"five")))
    async with subscribed(server, start_seq=0) as sub:
        assert (await next_segment(sub)).seq == 5
        assert sub.skipped == 5


# -- deadlines, backoff and re-issue, on virtual time ------------------------------------------------------


class TestVirtualTime:
    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, object]]:
        return ("trio", {"clock": MockClock(autojump_threshold=0)})

    async def test_transport_errors_back_off_from_half_a_second_and_give_up_after_5_retries(
        self,
    ) -> None:
        server = Server(default=refuse)
        async with subscribed(server) as sub:
            with pytest.raises(TrickleError, match="GET failed 6 times") as caught:
                await next_segment(sub)
        assert server.elapsed() == pytest.approx([0, 0.5, 1.5, 3.5, 7.5, 15.5])
        assert caught.value.url == "http://t/c/0"
        assert isinstance(caught.value.__cause__, httpx.ConnectError)

    async def test_retry_statuses_back_off_up_to_8_seconds(self) -> None:
        server = Server(default=busy)
        async with subscribed(server, start_seq=2, max_retries=6) as sub:
            with pytest.raises(TrickleError) as caught:
                await next_segment(sub)
        assert server.elapsed() == pytest.approx([0, 0.5, 1.5, 3.5, 7.5, 15.5, 23.5])
        assert (caught.value.url, caught.value.status_code) == ("http://t/c/2", 503)

    async def test_a_first_byte_is_waited_for_30_seconds(self) -> None:
        server = Server()
        server.queue("0", segment(0, Body(anyio.Event())), segment(0, Body(b"late")))
        async with subscribed(server) as sub:
            assert await (await next_segment(sub)).read() == b"late"
        assert server.elapsed()[:2] == pytest.approx([0, 30.5])  # then the 0.5 s backoff

    async def test_a_pending_get_for_seq_0_is_reissued_after_20_seconds_as_is(self) -> None:
        server = Server()
        server.queue("0", hang, segment(0, Body(b"zero")))
        async with subscribed(server, start_seq=0) as sub:
            assert (await next_segment(sub)).seq == 0
            assert sub.reissued == 1
        # 0 is an absolute position already: nothing to pin through GET /next.
        assert server.paths[:2] == ["0", "0"]
        assert server.elapsed()[:2] == pytest.approx([0, 20])

    async def test_every_request_gets_the_connect_timeout_and_no_read_timeout(self) -> None:
        server = Server()
        server.queue("-2", hang)
        server.queue("next", answer(200, Lp_Trickle_Latest="7"))
        server.queue("6", segment(6, Body(b"six")))
        async with subscribed(server, start_seq=-2) as sub:
            assert (await next_segment(sub)).seq == 6
        assert server.paths[:3] == ["-2", "next", "6"]
        assert server.timeouts[:3] == [_timeout(10.0)] * 3

    async def test_no_segment_within_360_seconds_is_a_timeout_naming_the_channel(self) -> None:
        server = Server(default=hang)
        async with subscribed(server) as sub:
            started = anyio.current_time()
            with pytest.raises(TrickleTimeout, match="no segment within 360") as caught:
                await sub.next()
            assert anyio.current_time() - started == pytest.approx(360)
        assert caught.value.url == URL

    async def test_a_reader_ahead_of_the_publisher_waits_a_quarter_second(self) -> None:
        server = Server()
        server.queue("5", answer(470, Lp_Trickle_Latest="3"), segment(5, Body(b"five")))
        async with subscribed(server, start_seq=5) as sub:
            assert (await next_segment(sub)).seq == 5
        assert server.elapsed()[:2] == pytest.approx([0, 0.25])

    async def test_a_jump_starts_the_ahead_count_afresh(self) -> None:
        server = Server()
        server.queue("5", answer(470, Lp_Trickle_Latest="7"))
        server.queue("7", answer(470, Lp_Trickle_Latest="6"), segment(7, Body(b"seven")))
        async with subscribed(server, start_seq=5, max_retries=1) as sub:
            assert (await next_segment(sub)).seq == 7
        assert server.paths[:3] == ["5", "7", "7"]

    async def test_following_a_restarted_publisher_starts_the_ahead_count_afresh(self) -> None:
        server = Server()
        server.queue("5", *[answer(470, Lp_Trickle_Latest="3") for _ in range(2)])
        server.queue("3", answer(470, Lp_Trickle_Latest="2"), segment(3, Body(b"three")))
        async with subscribed(server, start_seq=5, max_retries=1) as sub:
            assert (await next_segment(sub)).seq == 3
        assert server.paths[:4] == ["5", "5", "3", "3"]

    # A hostile or broken server's 470s must not turn the reader into a request loop: each one ran until
    # segment_timeout (360 s) without a pause. Over 100 requests in 5 virtual seconds fails the test.

    @staticmethod
    def _looping(latest: Callable[[int], int]) -> Server:
        server = Server()

        async def reply(request: httpx.Request) -> httpx.Response:
            if len(server.paths) > 100:
                raise AssertionError("the reader is in a request loop")
            seq = int(request.url.path.rsplit("/", 1)[-1])
            return answer(470, Lp_Trickle_Latest=str(latest(seq)))

        server.default = reply
        return server

    @pytest.mark.parametrize("start", [0, 5])
    async def test_a_470_naming_the_seq_asked_for_waits_before_asking_again(
        self, start: int
    ) -> None:
        server = self._looping(lambda seq: seq)
        async with subscribed(server, start_seq=start, segment_timeout=5.0) as sub:
            with pytest.raises(TrickleTimeout):
                await sub.next()
        assert set(server.paths) == {str(start)}
        assert server.elapsed()[:3] == pytest.approx([0, 0.25, 0.5])

    async def test_a_470_that_names_a_new_seq_every_time_is_followed_at_ahead_wait(self) -> None:
        server = self._looping(lambda seq: seq + 1)
        async with subscribed(server, start_seq=5, segment_timeout=5.0) as sub:
            with pytest.raises(TrickleTimeout):
                await sub.next()
        # The first max_retries (5) jumps are followed at once (a reader catching up), then 0.25 s apart.
        assert server.paths[:8] == ["5", "6", "7", "8", "9", "10", "11", "12"]
        assert server.elapsed()[:8] == pytest.approx([0, 0, 0, 0, 0, 0, 0.25, 0.5])

    async def test_an_error_body_that_never_ends_is_given_up_after_2_seconds(self) -> None:
        server = Server()
        body = Body(b"partial", anyio.Event())
        server.queue("0", answer(400, body))
        async with subscribed(server) as sub:
            started = anyio.current_time()
            with pytest.raises(TrickleProtocolError, match="b'partial'") as caught:
                await sub.next()
            assert anyio.current_time() - started == pytest.approx(2.0)
        assert caught.value.status_code == 400
        assert body.closed
