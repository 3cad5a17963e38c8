"""Every error and recovery branch of ``TricklePublisher``, against a scripted loopback server.

The server (hypercorn on 127.0.0.1 via ``hosted``) answers each request from a per-(method, path) script and
records what it received, so the real publisher code runs unmodified. Waits are events or bounded guards.
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
    TrickleChannelNotFound,
    TrickleClosed,
    TrickleError,
    TrickleInvalidInput,
    TrickleProtocolError,
    TricklePublisher,
    TrickleSegmentTooLarge,
    TrickleTimeout,
)

pytestmark = pytest.mark.anyio

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Got:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    replies: dict[tuple[str, str], list[Reply | None]] = field(default_factory=dict)
    got: list[Got] = field(default_factory=list)
    hold: anyio.Event = field(default_factory=anyio.Event)
    seen: anyio.Event = field(default_factory=anyio.Event)

    def queue(self, method: str, key: str, *replies: Reply | None) -> None:
        """``None`` as a reply: never answer (until the test ends)."""
        self.replies.setdefault((method, key), []).extend(replies)

    def posts(self) -> list[Got]:
        return [g for g in self.got if g.method == "POST"]

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]], send: Any
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        method, key = scope["method"], scope["path"].rsplit("/", 1)[-1]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        queued = self.replies.get((method, key))
        reply: Reply | None = queued.pop(0) if queued else (200, {}, b"")
        body = b""
        if reply is not None and reply[0] == 200:  # an error answer comes before the body is read
            while True:
                msg = await receive()
                body += msg.get("body", b"")
                if not msg.get("more_body"):
                    break
        self.got.append(Got(method, key, headers, body))
        self.seen.set()
        if reply is None:
            await self.hold.wait()
            return
        status, out_headers, out = reply
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode(), v.encode()) for k, v in out_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": out})


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[str]:
    async with hosted(server) as srv:
        try:
            yield f"{srv.url}/ch"
        finally:
            server.hold.set()


OPTS: dict[str, Any] = {"start_seq": 0, "preconnect": False, "delete_on_close": False}


async def test_5xx_before_any_byte_is_retried_once() -> None:
    server = Server()
    server.queue("POST", "0", (503, {}, b""))
    async with serving(server) as url, TricklePublisher(url, **OPTS) as pub:
        with anyio.fail_after(20):
            await pub.write(b"", wait=True)
        assert pub.stats.retries == 1
        assert pub.stats.failed_segments == 0
    assert [g.path for g in server.posts()] == ["0", "0"]


async def test_5xx_after_bytes_left_is_a_segment_failure() -> None:
    server = Server()
    server.queue("POST", "0", (500, {}, b""))
    async with serving(server) as url, TricklePublisher(url, **OPTS) as pub:
        with anyio.fail_after(20):
            async with pub.segment() as seg:
                await seg.write(b"payload")
                await server.seen.wait()
            with pytest.raises(TrickleProtocolError, match="status 500") as info:
                await seg.wait()
        assert info.value.status_code == 500
        assert info.value.url == f"{url}/0"
        assert (pub.stats.retries, pub.stats.failed_segments) == (0, 1)


async def test_4xx_is_not_retried() -> None:
    server = Server()
    server.queue("POST", "0", (400, {}, b""))
    async with serving(server) as url, TricklePublisher(url, **OPTS) as pub:
        with anyio.fail_after(20), pytest.raises(TrickleProtocolError, match="status 400"):
            await pub.write(b"", wait=True)
        assert pub.stats.retries == 0
    assert len(server.posts()) == 1


async def test_consecutive_failures_become_terminal_and_a_success_resets_the_count() -> None:
    server = Server()
    server.queue("POST", "0", (400, {}, b""))
    server.queue("POST", "1", (400, {}, b""))
    server.queue("POST", "3", (400, {}, b""))
    server.queue("POST", "4", (400, {}, b""))
    async with (
        serving(server) as url,
        TricklePublisher(url, max_consecutive_failures=2, **OPTS) as pub,
    ):
        with anyio.fail_after(20):
            for _ in range(2):
                with pytest.raises(TrickleProtocolError):
                    await pub.write(b"x", wait=True)
        assert "2 consecutive segment failures, last: POST" in str(pub.error)
    server = Server()
    server.queue("POST", "0", (400, {}, b""))
    server.queue("POST", "2", (400, {}, b""))
    async with (
        serving(server) as url,
        TricklePublisher(url, max_consecutive_failures=2, **OPTS) as pub,
    ):
        with anyio.fail_after(20):
            with pytest.raises(TrickleProtocolError):
                await pub.write(b"x", wait=True)
            await pub.write(b"ok", wait=True)  # resets the count
            with pytest.raises(TrickleProtocolError):
                await pub.write(b"x", wait=True)
        assert pub.error is None
        assert pub.stats.failed_segments == 2


async def test_terminal_failure_stops_further_writes() -> None:
    server = Server()
    server.queue("POST", "0", (400, {}, b""))
    async with (
        serving(server) as url,
        TricklePublisher(url, max_consecutive_failures=1, **OPTS) as pub,
    ):
        with anyio.fail_after(20), pytest.raises(TrickleProtocolError):
            await pub.write(b"x", wait=True)
        assert isinstance(pub.error, TrickleError)
        assert "1 consecutive segment failures, last: POST" in str(pub.error)
        assert pub.error.url == url
        with pytest.raises(TrickleError, match="consecutive segment failures"):
            await pub.write(b"y")
        with pytest.raises(TrickleError, match="consecutive segment failures"):
            await pub.flush()


async def test_404_is_terminal_channel_not_found() -> None:
    server = Server()
    server.queue("POST", "0", (404, {}, b""))
    async with serving(server) as url, TricklePublisher(url, **OPTS) as pub:
        with anyio.fail_after(20), pytest.raises(TrickleChannelNotFound) as info:
            await pub.write(b"x", wait=True)
        assert info.value.status_code == 404
        assert pub.error is info.value
        with pytest.raises(TrickleChannelNotFound):
            async with pub.segment():
                pass


async def test_413_is_segment_too_large() -> None:
    server = Server()
    server.queue("POST", "0", (413, {}, b""))
    async with serving(server) as url, TricklePublisher(url, max_segment_size=100, **OPTS) as pub:
        with (
            anyio.fail_after(20),
            pytest.raises(TrickleSegmentTooLarge, match=r"refused segment 0 \(413\)") as info,
        ):
            await pub.write(b"x", wait=True)
        assert info.value.limit == 100
        assert pub.stats.failed_segments == 1


async def test_closed_answer_is_terminal() -> None:
    server = Server()
    server.queue("POST", "0", (200, {"Lp-Trickle-Closed": "terminated"}, b""))
    async with serving(server) as url, TricklePublisher(url, **OPTS) as pub:
        with anyio.fail_after(20), pytest.raises(TrickleClosed, match="closed by the server"):
            await pub.write(b"x", wait=True)
        assert isinstance(pub.error, TrickleClosed)


async def test_transport_error_is_retried_only_before_the_first_byte() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/ch"
    async with TricklePublisher(url, **OPTS) as pub:
        with (
            anyio.fail_after(20),
            pytest.raises(TrickleError, match=r"POST .*/ch/0 failed: ConnectError"),
        ):
            await pub.write(b"", wait=True)
        assert pub.stats.retries == 1
        assert pub.stats.failed_segments == 1


async def test_wait_on_an_unfinished_segment_times_out() -> None:
    # The body is still open, so only wait()'s own bound (response_timeout) can end the wait.
    server = Server()
    server.queue("POST", "0", None)
    async with serving(server) as url, TricklePublisher(url, response_timeout=0.3, **OPTS) as pub:
        with anyio.fail_after(20):
            async with pub.segment() as seg:
                await seg.write(b"x")
                await server.seen.wait()
                with pytest.raises(
                    TrickleTimeout, match="segment 0: no answer from the server"
                ) as info:
                    await seg.wait()
                with pytest.raises(TrickleTimeout, match="segments still unanswered"):
                    await pub.flush()
        assert info.value.url == url


async def test_no_response_after_the_body_is_a_segment_timeout() -> None:
    # Once the body is complete the server owes an answer within response_timeout, which then fails
    # the segment. flush() is retried until that happened (its own bound is the same 0.3 s).
    server = Server()
    server.queue("POST", "0", None)
    async with serving(server) as url, TricklePublisher(url, response_timeout=0.3, **OPTS) as pub:
        async with pub.segment() as seg:
            await seg.write(b"x")
        with anyio.fail_after(20):
            while True:
                try:
                    await pub.flush()
                    break
                except TrickleTimeout:
                    continue
        with pytest.raises(TrickleTimeout, match="segment 0: no response") as info:
            await seg.wait()
        assert info.value.url == url
        assert pub.stats.failed_segments == 1


async def test_segment_writer_rejects_bad_use() -> None:
    server = Server()
    async with serving(server) as url, TricklePublisher(url, max_segment_size=4, **OPTS) as pub:
        with anyio.fail_after(20):
            async with pub.segment() as seg:
                with pytest.raises(TrickleInvalidInput, match="must be bytes, got str"):
                    await seg.write("text")  # type: ignore[arg-type]
                await seg.write(b"1234")
                with pytest.raises(
                    TrickleSegmentTooLarge, match="segment 0 would exceed 4 bytes"
                ) as info:
                    await seg.write(b"5")
                assert (info.value.limit, info.value.url) == (4, url)
                assert seg.size == 4
            with pytest.raises(TrickleClosed, match="segment 0 is closed"):
                await seg.write(b"x")
            await seg.wait()
    assert server.posts()[0].body == b"1234"


def test_settings_are_validated() -> None:
    url = "http://127.0.0.1:1/ch"
    for kw in ({"buffer_size": 0}, {"max_inflight": 0}, {"max_consecutive_failures": 0}):
        with pytest.raises(TrickleInvalidInput, match="must be positive"):
            TricklePublisher(url, **kw)  # type: ignore[arg-type]
    with pytest.raises(TrickleInvalidInput, match="drop_policy must be 'drop' or 'raise', got 'x'"):
        TricklePublisher(url, drop_policy="x")  # type: ignore[arg-type]
    with pytest.raises(TrickleInvalidInput, match="max_segment_size must be positive or None"):
        TricklePublisher(url, max_segment_size=0)
    TricklePublisher(
        url, buffer_size=1, max_inflight=1, max_consecutive_failures=1, max_segment_size=1
    )


async def test_use_outside_async_with_and_after_close() -> None:
    pub = TricklePublisher("http://127.0.0.1:1/ch", **OPTS)
    with pytest.raises(TrickleError, match="use `async with TricklePublisher"):
        await pub.write(b"x")
    await pub.aclose()
    with pytest.raises(TrickleClosed, match="publisher is closed"):
        await pub.write(b"x")
    with pytest.raises(TrickleClosed, match="publisher is closed"):
        await pub.__aenter__()


# ---------------------------------------------------------------------- start position (GET /next)


@pytest.mark.parametrize(
    ("reply", "seq"),
    [
        ((200, {"Lp-Trickle-Latest": "4"}, b""), 4),
        ((200, {}, b" 7\n"), 7),
        ((200, {"Lp-Trickle-Latest": "-3"}, b""), 0),
    ],
)
async def test_start_from_next_and_reset_on_the_first_post_only(reply: Reply, seq: int) -> None:
    server = Server()
    server.queue("GET", "next", reply)
    async with (
        serving(server) as url,
        TricklePublisher(url, preconnect=False, delete_on_close=False) as pub,
    ):
        with anyio.fail_after(20):
            assert await pub.write(b"a", wait=True) == seq
            assert await pub.write(b"b", wait=True) == seq + 1
        assert pub.next_seq == seq + 2
    first, second = server.posts()
    assert (first.path, first.headers.get("lp-trickle-reset")) == (str(seq), "1")
    assert (second.path, second.headers.get("lp-trickle-reset")) == (str(seq + 1), None)
    assert first.headers["content-type"] == "video/mp2t"


async def test_next_is_retried_on_5xx() -> None:
    server = Server()
    server.queue("GET", "next", (500, {}, b""), (200, {"Lp-Trickle-Latest": "2"}, b""))
    async with (
        serving(server) as url,
        TricklePublisher(url, preconnect=False, delete_on_close=False) as pub,
    ):
        with anyio.fail_after(20):
            assert await pub.write(b"a") == 2


async def test_next_failing_every_attempt_is_an_error() -> None:
    server = Server()
    server.queue("GET", "next", *[(502, {}, b"")] * 2)
    async with serving(server) as url:
        async with TricklePublisher(url, max_consecutive_failures=2, delete_on_close=False) as pub:
            with (
                anyio.fail_after(20),
                pytest.raises(
                    TrickleError, match=r"GET .*/next failed: TrickleProtocolError"
                ) as info,
            ):
                await pub.write(b"a")
        assert info.value.url == f"{url}/next"
    assert [g.path for g in server.got] == ["next", "next"]


@pytest.mark.parametrize(
    ("reply", "error", "match"),
    [
        ((404, {}, b""), TrickleChannelNotFound, "channel not found"),
        ((200, {"Lp-Trickle-Closed": "1"}, b""), TrickleClosed, "closed by the server"),
        ((200, {}, b"not a number"), TrickleProtocolError, "no next seq in reply"),
    ],
)
async def test_next_answers_that_end_the_publisher(
    reply: Reply, error: type[Exception], match: str
) -> None:
    server = Server()
    server.queue("GET", "next", reply)
    async with serving(server) as url, TricklePublisher(url, delete_on_close=False) as pub:
        with anyio.fail_after(20), pytest.raises(error, match=match):
            await pub.write(b"a")
    assert [g.path for g in server.got] == ["next"]


async def test_delete_on_close_unless_terminal() -> None:
    server = Server()
    async with serving(server) as url:
        async with TricklePublisher(url, start_seq=0, preconnect=False) as pub:
            await pub.write(b"a", wait=True)
        assert [g.method for g in server.got] == ["POST", "DELETE"]
        server.queue("POST", "0", (404, {}, b""))
        async with TricklePublisher(url, start_seq=0, preconnect=False) as pub:
            with pytest.raises(TrickleChannelNotFound):
                await pub.write(b"a", wait=True)
        assert [g.method for g in server.got] == ["POST", "DELETE", "POST"]


async def test_next_unreachable_is_retried_then_an_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/ch"
    started = anyio.current_time()
    async with TricklePublisher(url, max_consecutive_failures=2, delete_on_close=False) as pub:
        with (
            anyio.fail_after(20),
            pytest.raises(TrickleError, match=r"GET .*/ch/next failed: ConnectError") as info,
        ):
            await pub.write(b"a")
    assert info.value.url == f"{url}/next"
    # A second attempt was made: it waits 0.5 s first (a lower bound only, so load cannot break it).
    assert anyio.current_time() - started >= 0.45
