"""TricklePublisher -> TrickleServer -> TrickleSubscriber over real loopback HTTP."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from livepeer.runner.hosting import hosted
from livepeer.trickle import (
    TrickleChannelNotFound,
    TrickleClosed,
    TrickleError,
    TrickleInvalidInput,
    TricklePublisher,
    TrickleSegmentTooLarge,
    TrickleServer,
    TrickleSubscriber,
    TrickleTimeout,
)

pytestmark = pytest.mark.anyio


async def _collect(url: str, count: int, **kwargs: Any) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    async with TrickleSubscriber(url, **kwargs) as sub:
        async for segment in sub:
            out.append((segment.seq, await segment.read()))
            if len(out) == count:
                break
    return out


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_round_trip(trickle: Any, anyio_backend: str, eventually: Any) -> None:
    url = trickle.channel("abc-out")
    got: list[tuple[int, bytes]] = []
    ended: list[str | None] = []

    async def reader() -> None:
        async with TrickleSubscriber(url, start_seq=-1) as sub:
            async for segment in sub:
                got.append((segment.seq, await segment.read()))
            ended.append(sub.end_reason)

    payloads = [bytes([i]) * (1000 * (i + 1)) for i in range(4)]
    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.2)
        async with TricklePublisher(url, "video/mp2t") as pub:
            async with pub.segment() as seg:
                assert seg.seq == 0
                await seg.write(payloads[0][:10])
                await seg.write(payloads[0][10:])
            for data in payloads[1:]:
                await pub.write(data)
            await pub.flush()
            assert pub.stats.segments == 4
            await eventually(lambda: len(got) >= 4, within=5)
        # Closing the publisher DELETEs the channel, which ends the subscriber.
    assert got == list(enumerate(payloads))
    assert ended == ["closed"]
    assert "abc-out" not in trickle.server


async def test_segment_readable_while_arriving(trickle: Any) -> None:
    url = trickle.channel("c")
    first = anyio.Event()
    chunks: list[bytes] = []

    async def reader() -> None:
        async with TrickleSubscriber(url, start_seq=-1) as sub:
            segment = await sub.next()
            assert segment is not None
            async for chunk in segment:
                chunks.append(chunk)
                first.set()

    async with TricklePublisher(url, delete_on_close=False) as pub, anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.1)
        async with pub.segment() as seg:
            await seg.write(b"early")
            with anyio.fail_after(5):
                await first.wait()
            assert b"".join(chunks) == b"early"  # the segment is not finished yet
            await seg.write(b"late")
    assert b"".join(chunks) == b"earlylate"


async def test_start_positions(trickle: Any) -> None:
    url = trickle.channel("c")
    async with TricklePublisher(url, delete_on_close=False) as pub:
        for i in range(3):
            await pub.write(f"s{i}".encode(), wait=True)
    assert await _collect(url, 1, start_seq=-2) == [(2, b"s2")]
    assert await _collect(url, 2, start_seq=0) == [(0, b"s0"), (1, b"s1")]
    pending: list[tuple[int, bytes]] = []

    async def reader() -> None:
        pending.extend(await _collect(url, 1, start_seq=-1))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.2)
        assert pending == []  # -1 waits for the next segment
        async with TricklePublisher(url, delete_on_close=False) as pub:
            await pub.write(b"s3", wait=True)
    assert pending == [(3, b"s3")]


async def test_publisher_resolves_start_with_next_and_reset(trickle: Any) -> None:
    url = trickle.channel("c")
    async with TricklePublisher(url, delete_on_close=False) as pub:
        await pub.write(b"a", wait=True)
        await pub.write(b"b", wait=True)
    async with TricklePublisher(url, delete_on_close=False) as pub:
        assert await pub.write(b"c", wait=True) == 2
    posts = [
        r for r in trickle.front.requests if r.method == "POST" and r.path.endswith(("/0", "/2"))
    ]
    resets = {r.path: r.headers.get("lp-trickle-reset") for r in posts}
    assert resets == {"/c/0": "1", "/c/2": "1"}
    assert trickle.front.paths("GET").count("/c/next") == 2
    other = [r for r in trickle.front.requests if r.path == "/c/1" and r.method == "POST"]
    assert all("lp-trickle-reset" not in r.headers for r in other)


async def test_explicit_start_seq_skips_next(trickle: Any) -> None:
    url = trickle.channel("c")
    async with TricklePublisher(url, start_seq=7, delete_on_close=False) as pub:
        assert await pub.write(b"x", wait=True) == 7
    assert "/c/next" not in trickle.front.paths()
    assert not any("lp-trickle-reset" in r.headers for r in trickle.front.requests)


async def test_preconnects_next_seq(trickle: Any, eventually: Any) -> None:
    url = trickle.channel("c")
    async with TricklePublisher(url, delete_on_close=False) as pub:
        async with pub.segment() as seg:
            await seg.write(b"zero")
            await eventually(lambda: "/c/1" in trickle.front.paths("POST"), within=5)
        await pub.flush()
    async with TrickleSubscriber(url, start_seq=0) as sub:
        segment = await sub.next()
        assert segment is not None
        assert await segment.read() == b"zero"
        await eventually(lambda: "/c/1" in trickle.front.paths("GET"), within=5)


async def test_delete_on_close_and_not(trickle: Any) -> None:
    keep = trickle.channel("keep")
    gone = trickle.channel("gone")
    async with TricklePublisher(keep, delete_on_close=False) as pub:
        await pub.write(b"x")
    async with TricklePublisher(gone) as pub:
        await pub.write(b"x")
    assert "keep" in trickle.server
    assert "gone" not in trickle.server
    assert trickle.front.paths("DELETE") == ["/gone"]


async def test_404_is_terminal_for_publisher(trickle: Any) -> None:
    async with TricklePublisher(f"{trickle.base}/missing") as pub:
        with pytest.raises(TrickleChannelNotFound):
            await pub.write(b"x")
        assert isinstance(pub.error, TrickleChannelNotFound)
        with pytest.raises(TrickleChannelNotFound):
            await pub.write(b"y")
    # With an explicit seq the 404 arrives with the POST's answer.
    url = trickle.channel("c")
    async with TricklePublisher(url, start_seq=0, preconnect=False) as pub:
        await pub.write(b"a", wait=True)
        trickle.server.close_channel("c")
        with pytest.raises(TrickleChannelNotFound):
            await pub.write(b"b", wait=True)
        with pytest.raises(TrickleChannelNotFound):
            async with pub.segment() as seg:
                await seg.write(b"c")
    assert trickle.front.paths("DELETE") == []  # nothing to delete after a 404


async def test_channel_closed_under_a_preconnect_is_terminal(trickle: Any) -> None:
    url = trickle.channel("c")
    async with TricklePublisher(url) as pub:
        await pub.write(b"a", wait=True)
        trickle.server.close_channel("c")  # answers the preconnected POST with Lp-Trickle-Closed
        # httpx reads that answer only once it sends the body, so the first write after the close may
        # fail as a plain transport error; the publisher still turns terminal within a few writes.
        errors: list[TrickleError] = []
        for data in (b"b", b"c", b"d", b"e"):
            try:
                await pub.write(data, wait=True)
            except TrickleError as exc:
                errors.append(exc)
            if pub.error is not None:
                break
        assert errors
        assert pub.error is not None
        with pytest.raises(TrickleError):
            await pub.write(b"f")


async def test_subscriber_ends_on_404(trickle: Any) -> None:
    async with TrickleSubscriber(f"{trickle.base}/missing") as sub:
        assert await sub.next() is None
        assert sub.end_reason == "not-found"
        assert await sub.next() is None


async def test_subscriber_without_async_with(trickle: Any) -> None:
    url = trickle.channel("d")
    async with TricklePublisher(url, delete_on_close=False) as pub:
        for i in range(3):
            await pub.write(f"m{i}".encode(), wait=True)
    sub = TrickleSubscriber(url, start_seq=0)
    seen = []
    async for segment in sub:
        seen.append(await segment.read())
        if len(seen) == 3:
            trickle.server.close_channel("d")
    assert seen == [b"m0", b"m1", b"m2"]
    assert sub.end_reason == "not-found"  # no preconnect was waiting: the next GET finds no channel
    assert sub._client is not None
    assert sub._client.is_closed


async def test_publisher_requires_async_with(trickle: Any) -> None:
    pub = TricklePublisher(trickle.channel("c"))
    with pytest.raises(TrickleError, match="async with"):
        await pub.write(b"x")
    async with pub:
        pass
    with pytest.raises(TrickleClosed):
        await pub.write(b"x")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "ftp://h/c",
        "http:///c",
        "http://h",
        "http://h/",
        "http://h/c?x=1",
        "http://h/c#f",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(TrickleInvalidInput):
        TricklePublisher(url)
    with pytest.raises(TrickleInvalidInput):
        TrickleSubscriber(url)


def test_bad_seqs_and_settings() -> None:
    with pytest.raises(TrickleInvalidInput, match="below -2"):
        TrickleSubscriber("http://h/c", start_seq=-3)
    with pytest.raises(TrickleInvalidInput, match="below -1"):
        TricklePublisher("http://h/c", start_seq=-2)
    with pytest.raises(TrickleInvalidInput, match="must be an int"):
        TrickleSubscriber("http://h/c", start_seq=True)
    with pytest.raises(TrickleInvalidInput):
        TricklePublisher("http://h/c", drop_policy="explode")  # type: ignore[arg-type]
    with pytest.raises(TrickleInvalidInput):
        TrickleSubscriber("http://h/c", read_timeout=0)
    sub = TrickleSubscriber("http://h/c/")
    assert sub.url == "http://h/c"


async def test_segment_size_limits(trickle: Any) -> None:
    url = trickle.channel("c")
    pub = TricklePublisher(url, max_segment_size=100, delete_on_close=False)
    async with pub, pub.segment() as seg:
        await seg.write(b"x" * 100)
        with pytest.raises(TrickleSegmentTooLarge) as info:
            await seg.write(b"y")
        assert info.value.limit == 100
    async with TricklePublisher(url, delete_on_close=False) as pub:
        await pub.write(b"z" * 500, wait=True)
    async with TrickleSubscriber(url, start_seq=-2, max_segment_size=200) as sub:
        segment = await sub.next()
        assert segment is not None
        assert segment.seq == 1
        with pytest.raises(TrickleSegmentTooLarge):
            await segment.read()


async def test_server_size_limit_reaches_publisher() -> None:
    server = TrickleServer(max_segment_size=1000)
    server.create_channel("c")
    async with (
        hosted(server) as srv,
        TricklePublisher(f"{srv.url}/c", delete_on_close=False) as pub,
    ):
        await pub.write(b"x" * 1000, wait=True)
        with pytest.raises(TrickleSegmentTooLarge):
            await pub.write(b"x" * 300_000, wait=True)
        assert pub.stats.failed_segments == 1
        assert pub.error is None  # not terminal: the next segment is fine
        await pub.write(b"ok", wait=True)


async def test_segment_timeout(trickle: Any) -> None:
    url = trickle.channel("c")
    async with TrickleSubscriber(url, start_seq=-1, segment_timeout=0.3) as sub:
        with pytest.raises(TrickleTimeout):
            await sub.next()


async def test_long_pending_get_is_reissued(trickle: Any, eventually: Any) -> None:
    url = trickle.channel("c")
    got: list[bytes] = []
    async with httpx.AsyncClient() as client:
        sub = TrickleSubscriber(
            url, start_seq=-1, client=client, reissue_interval=0.15, segment_timeout=10
        )

        async def reader() -> None:
            async with sub:
                segment = await sub.next()
                assert segment is not None
                got.append(await segment.read())

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await eventually(lambda: sub.reissued >= 2, within=10)
            async with TricklePublisher(url, delete_on_close=False) as pub:
                await pub.write(b"finally", wait=True)
    assert got == [b"finally"]
    gets = trickle.front.paths("GET")
    # The first GET asked for -1; re-issues pin the position (GET next) and ask for seq 0 itself.
    assert gets[0] == "/c/-1"
    assert "/c/next" in gets
    assert gets.count("/c/0") >= 2


async def test_shared_client_is_not_closed(trickle: Any) -> None:
    url = trickle.channel("c")
    async with httpx.AsyncClient() as client:
        async with TricklePublisher(url, client=client, delete_on_close=False) as pub:
            await pub.write(b"x", wait=True)
        async with TrickleSubscriber(url, start_seq=0, client=client) as sub:
            segment = await sub.next()
            assert segment is not None
            assert await segment.read() == b"x"
        assert not client.is_closed
