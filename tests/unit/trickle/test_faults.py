"""Faults: slow subscriber (470), publisher restart (reset), server restart, cancellation without leaks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest

from livepeer.runner.hosting import bind_socket, hosted
from livepeer.trickle import Segment, TricklePublisher, TrickleServer, TrickleSubscriber

pytestmark = pytest.mark.anyio


async def test_slow_subscriber_gets_470_and_recovers_at_live_edge(trickle: Any) -> None:
    url = trickle.channel("c")
    seqs: list[int] = []
    async with TricklePublisher(url, delete_on_close=False) as pub:
        await pub.write(b"s0", wait=True)
        async with TrickleSubscriber(url, start_seq=0, segment_timeout=10) as sub:
            first = await sub.next()
            assert first is not None
            assert await first.read() == b"s0"
            seqs.append(first.seq)
            # The reader stalls while the publisher runs ten segments ahead (the ring holds five).
            for i in range(1, 11):
                await pub.write(f"s{i}".encode(), wait=True)

            async def publish_live() -> None:
                await anyio.sleep(0.3)
                await pub.write(b"live", wait=True)

            async with anyio.create_task_group() as tg:
                tg.start_soon(publish_live)
                while True:
                    segment = await sub.next()
                    assert segment is not None
                    seqs.append(segment.seq)
                    data = await segment.read()
                    if data == b"live":
                        break
            assert sub.skipped >= 9
    # seq 1 may come from the GET preconnected while seq 0 was read; then 470 -> the live edge (11).
    assert seqs in ([0, 1, 11], [0, 11])
    gets = trickle.front.paths("GET")
    assert "/c/2" in gets or "/c/1" in gets
    assert "/c/11" in gets


async def test_publisher_restart_resets_stuck_readers(
    trickle: Any, http_client: httpx.AsyncClient, eventually: Any
) -> None:
    url = trickle.channel("c")
    stuck = anyio.Event()
    chunks: list[bytes] = []

    async def hung_publisher() -> AsyncIterator[bytes]:
        yield b"half of seg 0"
        await stuck.wait()  # the process hangs with its POST open

    async def reader(sub: TrickleSubscriber) -> None:
        async for segment in sub:
            chunks.append(await segment.read())
            if len(chunks) == 2:
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(http_client.post, f"{url}/0", content=hung_publisher()))
        async with TrickleSubscriber(url, start_seq=0) as sub:
            tg.start_soon(reader, sub)
            await anyio.sleep(0.2)
            assert chunks == []  # stuck on the half-written segment
            # A new publisher resolves its seq with GET next and sends Lp-Trickle-Reset.
            async with TricklePublisher(url, delete_on_close=False) as pub:
                assert await pub.write(b"fresh", wait=True) == 1
                await eventually(lambda: len(chunks) >= 2)
        stuck.set()
    assert chunks == [b"half of seg 0", b"fresh"]


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.mark.parametrize("recreated", [True, False])
async def test_server_restart(recreated: bool) -> None:
    sock = bind_socket()
    try:
        first = TrickleServer()
        first.create_channel("c")
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}/c"
        received: list[bytes] = []
        sub = TrickleSubscriber(url, start_seq=0, retry_backoff=0.05, max_retries=10)
        async with sub:
            async with hosted(first, sock=sock, graceful_timeout=0.2):
                async with TricklePublisher(url, delete_on_close=False) as pub:
                    await pub.write(b"before", wait=True)
                segment = await sub.next()
                assert segment is not None
                received.append(await segment.read())
            # The server is gone (its channels with it); the subscriber's pending GET failed over.
            second = TrickleServer()
            if recreated:
                second.create_channel("c")  # the orchestrator came back and re-created the channel
            async with hosted(second, sock=sock):
                if recreated:
                    async with anyio.create_task_group() as tg:

                        async def publish() -> None:
                            async with TricklePublisher(
                                url, start_seq=0, delete_on_close=False
                            ) as p:
                                await anyio.sleep(0.3)
                                # The subscriber waits for seq 1 (it read 0 before the restart).
                                await p.write(b"a0", wait=True)
                                await p.write(b"after", wait=True)

                        tg.start_soon(publish)
                        segment = await sub.next()
                        assert segment is not None
                        received.append(await segment.read())
                else:
                    assert await sub.next() is None
                    assert sub.end_reason == "not-found"
        assert received == ([b"before", b"after"] if recreated else [b"before"])
    finally:
        sock.close()


@pytest.mark.parametrize("where", ["subscriber-waiting", "subscriber-reading", "publisher-writing"])
async def test_cancel_leaves_no_tasks_or_connections(
    trickle: Any, task_snapshot: Any, where: str
) -> None:
    url = trickle.channel("c")
    async with httpx.AsyncClient() as warm:  # the server is fully up before the snapshot
        assert (await warm.get(f"{url}/next")).status_code == 200
    await trickle.wait_idle()
    check = await task_snapshot()
    started = anyio.Event()
    subs: list[TrickleSubscriber] = []
    pubs: list[TricklePublisher] = []

    async def subscriber() -> None:
        sub = TrickleSubscriber(url, start_seq=-1)
        subs.append(sub)
        async with sub:
            if where == "subscriber-waiting":
                started.set()
            async for segment in sub:
                chunks: list[bytes] = []
                async for chunk in segment:
                    chunks.append(chunk)
                    started.set()

    async def publisher() -> None:
        pub = TricklePublisher(url, delete_on_close=False)
        pubs.append(pub)
        async with pub, pub.segment() as seg:
            await seg.write(b"x" * 1000)
            if where == "publisher-writing":
                started.set()
            await anyio.sleep(30)  # mid-segment when cancelled

    async with anyio.create_task_group() as tg:
        tg.start_soon(subscriber)
        if where != "subscriber-waiting":
            await anyio.sleep(0.1)
            tg.start_soon(publisher)
        with anyio.fail_after(5):
            await started.wait()
        await anyio.sleep(0.1)
        tg.cancel_scope.cancel()

    await check()  # no task of ours (or of hypercorn for our connections) is left running
    await trickle.wait_idle()  # the server saw every request end: no connection is left open
    for sub in subs:
        assert sub._client is not None
        assert sub._client.is_closed
    for pub in pubs:
        assert pub._client is not None
        assert pub._client.is_closed


async def test_cancel_with_shared_client_returns_no_busy_connection(trickle: Any) -> None:
    url = trickle.channel("c")
    async with httpx.AsyncClient() as client:
        with anyio.move_on_after(0.3):
            async with TrickleSubscriber(url, start_seq=-1, client=client) as sub:
                await sub.next()
        pool = client._transport._pool  # type: ignore[attr-defined]
        busy = [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
        assert busy == []
        await trickle.wait_idle()


async def test_segment_closed_when_subscriber_moves_on(trickle: Any) -> None:
    url = trickle.channel("c")
    async with TricklePublisher(url, delete_on_close=False) as pub:
        for i in range(3):
            await pub.write(bytes(10_000) + bytes([i]), wait=True)
    held: list[Segment] = []
    async with TrickleSubscriber(url, start_seq=0) as sub:
        async for segment in sub:
            held.append(segment)  # never read
            if len(held) == 3:
                break
        assert [s.done for s in held] == [True, True, False]
    assert held[2].done
