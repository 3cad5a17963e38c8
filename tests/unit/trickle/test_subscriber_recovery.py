"""Every recovery rule of ``TrickleSubscriber``, each against a scripted loopback server.

The server is a real HTTP server on 127.0.0.1 (hypercorn via ``hosted``) whose answers per request are
scripted, so each rule (retry on 503 and on transport errors, the retry count, the backoff cap, 470
"jump" and "ahead", re-issuing a long-pending -2/-1 GET, the segment size limit, ...) is exercised through
the real client code with nothing of it mocked. Waits are events or bounded ``fail_after`` guards; the
only timing knobs used are the subscriber's own (backoff, ahead_wait, reissue_interval), set so that a
test passes no matter how slow the machine is and fails if the rule is missing.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from livepeer.runner.hosting import hosted
from livepeer.trickle import (
    TrickleClosed,
    TrickleError,
    TrickleInvalidInput,
    TrickleProtocolError,
    TrickleSegmentTooLarge,
    TrickleSubscriber,
    TrickleTimeout,
)

pytestmark = pytest.mark.anyio

Reply = tuple[int, dict[str, str], bytes]
Answer = Callable[[str], Awaitable[Reply]]


@dataclass
class Script:
    """Answers ``GET /ch/<x>`` with the next reply queued for ``x``, else ``default(x)``."""

    replies: dict[str, list[Reply | Answer]] = field(default_factory=dict)
    default: Reply | None = (404, {}, b"")
    paths: list[str] = field(default_factory=list)
    hold: anyio.Event = field(default_factory=anyio.Event)

    def queue(self, key: str, *replies: Reply | Answer) -> None:
        self.replies.setdefault(key, []).extend(replies)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        key = scope["path"].rsplit("/", 1)[-1]
        self.paths.append(key)
        queued = self.replies.get(key)
        if queued:
            reply = queued.pop(0)
        elif self.default is not None:
            reply = self.default
        else:
            await self.hold.wait()  # never answered while the test runs
            return
        if callable(reply):
            reply = await reply(key)
        status, headers, body = reply
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(script: Script) -> AsyncIterator[str]:
    async with hosted(script) as srv:
        try:
            yield f"{srv.url}/ch"
        finally:
            script.hold.set()


def seg(seq: int, body: bytes = b"data") -> Reply:
    return (200, {"Lp-Trickle-Seq": str(seq), "Content-Type": "video/mp2t"}, body)


async def first(url: str, **kw: Any) -> tuple[int, bytes]:
    with anyio.fail_after(20):
        async with TrickleSubscriber(url, **kw) as sub:
            segment = await sub.next()
            assert segment is not None
            return segment.seq, await segment.read()


FAST = {"retry_backoff": 0.0, "ahead_wait": 0.0}


async def test_503_is_retried_until_a_segment_arrives() -> None:
    script = Script()
    script.queue("0", (503, {}, b""), (503, {}, b""), seg(0, b"ok"))
    async with serving(script) as url:
        assert await first(url, start_seq=0, max_retries=2, **FAST) == (0, b"ok")
    assert script.paths == ["0", "0", "0"]


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
async def test_every_retry_status_is_retried(status: int) -> None:
    script = Script()
    script.queue("0", (status, {}, b""), seg(0))
    async with serving(script) as url:
        assert await first(url, start_seq=0, max_retries=1, **FAST) == (0, b"data")


async def test_retry_count_is_max_retries_then_a_typed_error() -> None:
    script = Script(default=(503, {}, b"busy"))
    async with serving(script) as url:
        with pytest.raises(TrickleError, match="GET failed 3 times, last status 503") as info:
            await first(url, start_seq=0, max_retries=2, **FAST)
    assert info.value.status_code == 503
    assert info.value.url == f"{url}/0"
    assert script.paths == ["0", "0", "0"]


async def test_no_retries_means_one_request() -> None:
    script = Script(default=(503, {}, b""))
    async with serving(script) as url:
        with pytest.raises(TrickleError, match="GET failed 1 times"):
            await first(url, start_seq=0, max_retries=0, **FAST)
    assert script.paths == ["0"]


async def test_backoff_is_capped_by_max_backoff() -> None:
    # Uncapped, the second retry would sleep 1000 s; capped at 0.01 s it is immediate.
    script = Script()
    script.queue("0", (503, {}, b""), (503, {}, b""), seg(0))
    async with serving(script) as url:
        assert await first(
            url, start_seq=0, max_retries=3, retry_backoff=500.0, max_backoff=0.01
        ) == (0, b"data")


def test_backoff_doubles_from_retry_backoff_up_to_the_cap() -> None:
    sub = TrickleSubscriber("http://127.0.0.1:1/ch", retry_backoff=0.5, max_backoff=3.0)
    assert [sub._backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


async def test_transport_errors_are_retried_then_raised() -> None:
    with socket.socket() as s:  # a port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TrickleError, match="GET failed 3 times, last: ConnectError"):
        await first(f"http://127.0.0.1:{port}/ch", start_seq=0, max_retries=2, **FAST)


async def test_470_jumps_to_the_latest_and_counts_skipped() -> None:
    script = Script()
    script.queue("2", (470, {"Lp-Trickle-Latest": "7"}, b""))
    script.queue("7", seg(7, b"live"))
    async with serving(script) as url, TrickleSubscriber(url, start_seq=2, **FAST) as sub:
        with anyio.fail_after(20):
            segment = await sub.next()
            assert segment is not None
            assert (segment.seq, await segment.read()) == (7, b"live")
        assert sub.skipped == 5
        assert sub.next_seq == 8
    assert script.paths[:2] == ["2", "7"]


async def test_470_for_a_relative_start_jumps_without_counting() -> None:
    script = Script()
    script.queue("-1", (470, {"Lp-Trickle-Latest": "4"}, b""))
    script.queue("4", seg(4))
    async with serving(script) as url, TrickleSubscriber(url, start_seq=-1, **FAST) as sub:
        with anyio.fail_after(20):
            segment = await sub.next()
        assert segment is not None
        assert segment.seq == 4
        assert sub.skipped == 0


async def test_470_ahead_waits_for_the_publisher_then_reads_the_same_seq() -> None:
    # Latest (3) below the requested seq (5): the reader is ahead; it asks for 5 again.
    script = Script()
    script.queue("5", (470, {"Lp-Trickle-Latest": "3"}, b""), seg(5))
    async with serving(script) as url, TrickleSubscriber(url, start_seq=5, **FAST) as sub:
        with anyio.fail_after(20):
            segment = await sub.next()
        assert segment is not None
        assert segment.seq == 5
        assert sub.skipped == 0
    assert script.paths[:2] == ["5", "5"]


async def test_470_ahead_longer_than_max_retries_follows_the_restarted_publisher() -> None:
    script = Script()
    script.queue("5", *[(470, {"Lp-Trickle-Latest": "3"}, b"")] * 3)
    script.queue("3", seg(3))
    async with serving(script) as url:
        assert await first(url, start_seq=5, max_retries=2, **FAST) == (3, b"data")
    assert script.paths[:4] == ["5", "5", "5", "3"]


async def test_470_ahead_waits_ahead_wait_between_attempts() -> None:
    # With a huge ahead_wait the second attempt never comes within the test's bound.
    script = Script()
    script.queue("5", (470, {"Lp-Trickle-Latest": "3"}, b""), seg(5))
    async with serving(script) as url:  # noqa: SIM117 - the server outlives the subscriber
        async with TrickleSubscriber(url, start_seq=5, ahead_wait=600.0) as sub:
            with anyio.move_on_after(1.0):
                await sub.next()
    assert script.paths[:1] == ["5"]
    assert len(script.paths) == 1


@pytest.mark.parametrize("headers", [{}, {"Lp-Trickle-Latest": "-1"}])
async def test_470_without_a_usable_latest_is_a_protocol_error(headers: dict[str, str]) -> None:
    script = Script()
    script.queue("0", (470, headers, b""))
    async with serving(script) as url:
        with pytest.raises(TrickleProtocolError, match="470 without Lp-Trickle-Latest") as info:
            await first(url, start_seq=0, **FAST)
    assert (info.value.status_code, info.value.url) == (470, f"{url}/0")


@pytest.mark.parametrize(("start", "latest", "expect"), [(-2, 7, 6), (-1, 7, 7), (-2, 0, 0)])
async def test_long_pending_relative_get_is_reissued_at_a_pinned_seq(
    start: int, latest: int, expect: int
) -> None:
    script = Script(default=None)  # GET /-2 and /-1 hang
    script.queue("next", (200, {"Lp-Trickle-Latest": str(latest)}, b""))
    script.queue(str(expect), seg(expect))
    async with serving(script) as url:  # noqa: SIM117 - the server outlives the subscriber
        async with TrickleSubscriber(url, start_seq=start, reissue_interval=0.3, **FAST) as sub:
            with anyio.fail_after(20):
                segment = await sub.next()
            assert segment is not None
            assert segment.seq == expect
            assert sub.reissued == 1
    assert script.paths[:3] == [str(start), "next", str(expect)]


@pytest.mark.parametrize(
    "reply", [(404, {}, b""), (200, {}, b""), (200, {"Lp-Trickle-Latest": "-1"}, b"")]
)
async def test_reissue_keeps_the_relative_seq_when_next_gives_no_position(reply: Reply) -> None:
    script = Script(default=None)
    script.queue("next", reply)

    async def hang(_key: str) -> Reply:
        await script.hold.wait()
        raise AssertionError("unreachable")

    script.replies["-2"] = [hang, seg(3)]
    async with serving(script) as url:  # noqa: SIM117 - the server outlives the subscriber
        async with TrickleSubscriber(url, start_seq=-2, reissue_interval=0.3, **FAST) as sub:
            with anyio.fail_after(20):
                segment = await sub.next()
            assert segment is not None
            assert segment.seq == 3
    assert script.paths[:3] == ["-2", "next", "-2"]


async def test_reissue_of_an_absolute_seq_asks_for_the_same_seq() -> None:
    async def hang(_key: str) -> Reply:
        await script.hold.wait()
        raise AssertionError("unreachable")

    script = Script(default=None)
    script.queue("4", hang, seg(4))
    async with serving(script) as url:  # noqa: SIM117 - the server outlives the subscriber
        async with TrickleSubscriber(url, start_seq=4, reissue_interval=0.3, **FAST) as sub:
            with anyio.fail_after(20):
                segment = await sub.next()
            assert segment is not None
            assert segment.seq == 4
            assert sub.reissued == 1
    assert script.paths[:2] == ["4", "4"]


@pytest.mark.parametrize(("size", "ok"), [(10, True), (11, False)])
async def test_segment_size_limit(size: int, ok: bool) -> None:
    script = Script()
    script.queue("0", seg(0, b"x" * size))
    async with serving(script) as url:
        if ok:
            assert await first(url, start_seq=0, max_segment_size=10) == (0, b"x" * 10)
        else:
            with pytest.raises(TrickleSegmentTooLarge) as info:
                await first(url, start_seq=0, max_segment_size=10)
            assert info.value.limit == 10


async def test_end_of_stream_reasons() -> None:
    script = Script()
    script.queue("0", seg(0))
    script.queue("1", (200, {"Lp-Trickle-Closed": "terminated"}, b""))
    async with serving(script) as url, TrickleSubscriber(url, start_seq=0) as sub:
        with anyio.fail_after(20):
            assert [s.seq async for s in sub] == [0]
        assert sub.end_reason == "closed"
    script = Script()
    async with serving(script) as url, TrickleSubscriber(url, start_seq=0) as sub:
        with anyio.fail_after(20):
            assert await sub.next() is None
            assert await sub.next() is None  # stays ended, no new request
        assert sub.end_reason == "not-found"
    assert script.paths == ["0"]


async def test_unexpected_status_is_a_protocol_error_with_the_body() -> None:
    script = Script()
    script.queue("0", (400, {}, b"bad seq"))
    async with serving(script) as url:
        with pytest.raises(TrickleProtocolError, match="unexpected status 400: b'bad seq'") as info:
            await first(url, start_seq=0)
    assert (info.value.status_code, info.value.url) == (400, f"{url}/0")


async def test_seq_header_is_required_for_relative_positions_only() -> None:
    script = Script()
    script.queue("-1", (200, {}, b"x"))
    async with serving(script) as url:
        with pytest.raises(TrickleProtocolError, match="200 without Lp-Trickle-Seq") as info:
            await first(url, start_seq=-1)
    assert (info.value.status_code, info.value.url) == (200, f"{url}/-1")
    script = Script()
    script.queue("3", (200, {}, b"x"))
    async with serving(script) as url:
        assert await first(url, start_seq=3) == (3, b"x")


async def test_empty_segments_are_skipped_unless_asked_for() -> None:
    script = Script()
    script.queue("0", seg(0, b""))
    script.queue("1", seg(1, b"one"))
    async with serving(script) as url:
        assert await first(url, start_seq=0) == (1, b"one")
    script = Script()
    script.queue("0", seg(0, b""))
    async with serving(script) as url:
        assert await first(url, start_seq=0, skip_empty=False) == (0, b"")


async def test_no_first_byte_within_read_timeout_is_retried() -> None:
    gate = anyio.Event()

    async def stall(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await Script()(scope, receive, send)
            return
        calls.append(scope["path"])
        headers = [(b"lp-trickle-seq", b"0")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if len(calls) == 1:
            await gate.wait()  # headers but no body: the first byte never comes
        await send({"type": "http.response.body", "body": b"late"})

    calls: list[str] = []
    async with hosted(stall) as srv:
        try:
            got = await first(f"{srv.url}/ch", start_seq=0, read_timeout=0.3, **FAST)
        finally:
            gate.set()
    assert got == (0, b"late")
    assert len(calls) == 2


async def test_segment_timeout_names_the_wait() -> None:
    script = Script(default=None)
    async with serving(script) as url:  # noqa: SIM117 - the server outlives the subscriber
        async with TrickleSubscriber(url, start_seq=0, segment_timeout=0.3) as sub:
            with pytest.raises(TrickleTimeout, match=r"no segment within 0\.3 s"):
                await sub.next()


def test_negative_or_zero_settings_are_rejected() -> None:
    url = "http://127.0.0.1:1/ch"
    for kw in ({"max_retries": -1}, {"retry_backoff": -0.1}, {"ahead_wait": -1.0}):
        with pytest.raises(TrickleInvalidInput, match="must not be negative") as info:
            TrickleSubscriber(url, **kw)  # type: ignore[arg-type]
        assert info.value.url == url
    for name in ("reissue_interval", "connect_timeout", "read_timeout"):
        with pytest.raises(TrickleInvalidInput, match=f"{name} must be positive") as info:
            TrickleSubscriber(url, **{name: 0.0})  # type: ignore[arg-type]
        assert info.value.url == url
    TrickleSubscriber(url, max_retries=0, retry_backoff=0.0, ahead_wait=0.0)  # zero is fine


async def test_unexpected_status_body_is_cut_at_512_bytes() -> None:
    script = Script()
    script.queue("0", (400, {}, b"a" * 511 + b"b" * 600))
    async with serving(script) as url:
        with pytest.raises(TrickleProtocolError) as info:
            await first(url, start_seq=0)
    assert f"b'{'a' * 511}b'" in str(info.value)


async def test_empty_segment_moves_to_the_one_after_the_served_seq() -> None:
    script = Script()
    script.queue("-1", seg(5, b""))
    script.queue("6", seg(6, b"six"))
    async with serving(script) as url:
        assert await first(url, start_seq=-1) == (6, b"six")
    assert script.paths[:2] == ["-1", "6"]


async def test_retries_of_a_stalled_first_byte_are_counted() -> None:
    async def stall(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await Script()(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await gate.wait()

    gate = anyio.Event()
    async with hosted(stall) as srv:
        try:
            with pytest.raises(TrickleError, match="GET failed 1 times, last status 200") as info:
                await first(f"{srv.url}/ch", start_seq=0, read_timeout=0.2, max_retries=0)
        finally:
            gate.set()
    assert info.value.status_code == 200


async def _midway(scope: MutableMapping[str, Any], receive: Any, send: Any, end: Any) -> None:
    if scope["type"] != "http":
        await Script()(scope, receive, send)
        return
    headers = [(b"lp-trickle-seq", b"0")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    await end()


async def test_a_stall_mid_segment_is_a_timeout_naming_the_segment() -> None:
    gate = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _midway(scope, receive, send, gate.wait)

    async with hosted(app) as srv:
        try:
            async with TrickleSubscriber(f"{srv.url}/ch", start_seq=0, read_timeout=0.3) as sub:
                with anyio.fail_after(20):
                    segment = await sub.next()
                    assert segment is not None
                    with pytest.raises(TrickleTimeout, match="no segment data") as info:
                        await segment.read()
                assert info.value.url == f"{srv.url}/ch/0"
                assert segment.done
        finally:
            gate.set()


async def test_a_connection_lost_mid_segment_is_a_typed_error() -> None:
    async def drop() -> None:
        raise RuntimeError("server drops the connection")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await _midway(scope, receive, send, drop)

    async with hosted(app) as srv:  # noqa: SIM117 - the server outlives the subscriber
        async with TrickleSubscriber(f"{srv.url}/ch", start_seq=0, max_retries=0) as sub:
            with anyio.fail_after(20):
                segment = await sub.next()
                assert segment is not None
                chunks: list[bytes] = []

                async def drain() -> None:
                    async for chunk in segment:
                        chunks.append(chunk)

                with pytest.raises(TrickleError, match="segment read failed") as info:
                    await drain()
            assert chunks == [b"part"]
            assert info.value.url == f"{srv.url}/ch/0"
            assert segment.done


async def test_a_segment_is_consumed_once() -> None:
    script = Script()
    script.queue("0", seg(0, b"abc"))
    async with serving(script) as url, TrickleSubscriber(url, start_seq=0) as sub:
        with anyio.fail_after(20):
            segment = await sub.next()
            assert segment is not None
            assert await segment.read() == b"abc"
        with pytest.raises(TrickleError, match="already being iterated") as info:
            await segment.read()
        assert info.value.url == f"{url}/0"
        with pytest.raises(TrickleError, match="iterated only once"):
            segment.__aiter__()
    script = Script()
    script.queue("0", seg(0, b"abc"))
    async with serving(script) as url, TrickleSubscriber(url, start_seq=0) as sub:
        with anyio.fail_after(20):
            segment = await sub.next()
            assert segment is not None
            assert [c async for c in segment] == [b"abc"]
        with pytest.raises(TrickleError, match="iterated only once") as info:
            segment.__aiter__()
        assert info.value.url == f"{url}/0"


async def test_a_closed_subscriber_refuses_use() -> None:
    script = Script()
    async with serving(script) as url:
        sub = TrickleSubscriber(url, start_seq=0)
        await sub.aclose()
        with pytest.raises(TrickleClosed) as info:
            await sub.next()
        assert info.value.url == url
        with pytest.raises(TrickleClosed) as info:
            await sub.__aenter__()
        assert info.value.url == url
    assert script.paths == []


async def test_a_connection_lost_before_the_first_byte_is_retried() -> None:
    calls: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await Script()(scope, receive, send)
            return
        calls.append(scope["path"])
        headers = [(b"lp-trickle-seq", b"0"), (b"content-length", b"10")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        raise RuntimeError("server drops the connection before any body byte")

    async with hosted(app) as srv:
        with pytest.raises(TrickleError, match="GET failed 2 times, last status 200") as info:
            await first(f"{srv.url}/ch", start_seq=0, max_retries=1, **FAST)
    assert info.value.status_code == 200
    assert len(calls) == 2
