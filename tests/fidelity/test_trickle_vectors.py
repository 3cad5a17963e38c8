"""go-livepeer trickle server vectors (trickle/trickle_test.go and trickle/trickle_server.go at 176aa415).

Each test names its Go source. The server is ``livepeer.trickle.TrickleServer`` (what the devnet mounts under
``/ai/trickle/``) on loopback; go-livepeer's ``LocalPublisher.CreateChannel`` is ``server.create_channel``.
The Go client calls (``NewTricklePublisher``/``NewTrickleSubscriber``) become raw HTTP where the vector is
about the server, and our public ``TricklePublisher``/``TrickleSubscriber`` where it is about a client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from livepeer.runner.hosting import hosted
from livepeer.trickle import (
    TrickleChannelNotFound,
    TricklePublisher,
    TrickleServer,
    TrickleSubscriber,
)

pytestmark = pytest.mark.anyio


async def _feed(stream: anyio.abc.ObjectReceiveStream[bytes]) -> AsyncIterator[bytes]:
    async with stream:
        async for chunk in stream:
            yield chunk


async def _write_all(http: httpx.AsyncClient, url: str, segments: list[bytes]) -> None:
    for i, data in enumerate(segments):
        r = await http.post(f"{url}/{i}", content=data)
        assert (r.status_code, r.headers["lp-trickle-seq"]) == (200, str(i))


# -- trickle_test.go ------------------------------------------------------------------------------------


async def test_close(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_test.go TestTrickle_Close
    url = f"{fid_trickle.base}/testest"
    # Writing before the channel exists: 404 (publisher sees "stream not found").
    async with TricklePublisher(url, "text/plain", delete_on_close=False) as pub:
        with pytest.raises(TrickleChannelNotFound):
            await pub.write(b"first post", wait=True)
    fid_trickle.channel("testest")
    await _write_all(fid_http, url, [b"first", b"second"])
    for seq, want in enumerate([b"first", b"second"]):
        r = await fid_http.get(f"{url}/{seq}")
        assert r.content == want
        assert r.headers["lp-trickle-seq"] == str(seq)
        assert r.headers["lp-trickle-latest"] == "2"
    assert (await fid_http.delete(url)).status_code == 200  # pub.Close()
    # Reading or writing past the last segment of a deleted channel, or a new subscriber/publisher: 404.
    assert (await fid_http.get(f"{url}/2")).status_code == 404
    post = await fid_http.post(f"{url}/2", content=b"invalid")
    assert post.status_code == 404
    assert post.headers["connection"] == "close"  # trickle_server.go:357 wakes preconnects


async def test_http_create_contract_without_autocreate(
    fid_trickle: Any, fid_http: httpx.AsyncClient
) -> None:
    # go: trickle/trickle_test.go TestTrickle_HTTPCreateContract ("... without autocreate returns not found")
    assert (await fid_http.post(f"{fid_trickle.base}/missing")).status_code == 404
    r = await fid_http.post(f"{fid_trickle.base}/missing/0", content=b"hello")
    assert r.status_code == 404
    # An existing channel "creates" fine (trickle_server.go:329-343).
    fid_trickle.channel("present")
    assert (await fid_http.post(f"{fid_trickle.base}/present")).status_code == 200


async def test_delete_then_next_is_404(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_test.go TestTrickle_BeforeDelete ("called before deletion") and TestTrickle_Delete
    url = fid_trickle.channel("deleted")
    r = await fid_http.delete(url)
    assert (r.status_code, r.content) == (200, b"")
    assert (await fid_http.get(f"{url}/next")).status_code == 404
    # trickle_server.go:301-303: deleting an unknown channel is http.Error(..., 400).
    again = await fid_http.delete(url)
    assert (again.status_code, again.text) == (400, "Invalid stream\n")


async def test_set_seq(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_test.go TestTrickle_SetSeq
    url = fid_trickle.channel()
    segs = [b"first", b"second", b"third", b"fourth"]
    await _write_all(fid_http, url, segs)
    for i in range(len(segs)):
        for j in range(i, len(segs)):
            assert (await fid_http.get(f"{url}/{j}")).content == segs[j]
    for j in reversed(range(len(segs))):
        assert (await fid_http.get(f"{url}/{j}")).content == segs[j]


async def test_concurrent_writes_to_one_seq_append(
    fid_trickle: Any, fid_http: httpx.AsyncClient
) -> None:
    # go: trickle/trickle_test.go TestTrickle_Reset (two writers on seq 0 append; readers cannot tell)
    url = fid_trickle.channel()
    send1, recv1 = anyio.create_memory_object_stream[bytes](4)
    send2, recv2 = anyio.create_memory_object_stream[bytes](4)
    statuses: list[int] = []
    async with anyio.create_task_group() as tg:

        async def post(stream: anyio.abc.ObjectReceiveStream[bytes]) -> None:
            r = await fid_http.post(f"{url}/0", content=_feed(stream))
            statuses.append(r.status_code)

        tg.start_soon(post, recv1)
        await send1.send(b"Hello")
        async with fid_http.stream("GET", f"{url}/0") as reader:
            chunks = reader.aiter_raw()
            got = b""
            while len(got) < 5:
                got += await chunks.__anext__()
            assert got == b"Hello"
            tg.start_soon(post, recv2)
            await send2.send(b"GoodbyWorld")
            while len(got) < 16:
                got += await chunks.__anext__()
            assert got == b"HelloGoodbyWorld"
            await send1.aclose()
            await send2.aclose()
    assert statuses == [200, 200]
    assert (await fid_http.get(f"{url}/0")).content == b"HelloGoodbyWorld"


async def test_publisher_reset(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_test.go TestTrickle_PublisherReset
    url = fid_trickle.channel()
    send0, recv0 = anyio.create_memory_object_stream[bytes](4)
    async with anyio.create_task_group() as tg:
        first_post: list[int] = []

        async def post0() -> None:
            first_post.append((await fid_http.post(f"{url}/0", content=_feed(recv0))).status_code)

        tg.start_soon(post0)
        await send0.send(b"Hello")
        async with fid_http.stream("GET", f"{url}/0") as reader:
            chunks = reader.aiter_raw()
            assert await chunks.__anext__() == b"Hello"
            reset = await fid_http.post(
                f"{url}/-1",
                content=b"after-reset",
                headers={"Content-Type": "text/plain", "Lp-Trickle-Reset": "true"},
            )
            assert reset.status_code == 200
            assert reset.headers["lp-trickle-seq"] == "1"  # POST /-1 echoes the resolved seq
            with anyio.fail_after(5):  # the blocked reader is released by the reset
                rest = b"".join([c async for c in chunks])
            assert rest == b""
        assert (await fid_http.get(f"{url}/0")).content == b"Hello"
        assert (await fid_http.get(f"{url}/1")).content == b"after-reset"
        await send0.send(b"late-bytes")  # the old writer may keep writing until it closes
        await send0.aclose()
    assert first_post == [200]


async def test_empty_segment(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_test.go TestTrickle_EmptySegment
    url = fid_trickle.channel()
    assert (await fid_http.post(f"{url}/0", content=b"")).status_code == 200
    r = await fid_http.get(f"{url}/0")
    assert r.status_code == 200
    assert r.headers["lp-trickle-seq"] == "0"
    assert "lp-trickle-closed" not in r.headers
    assert r.headers["lp-trickle-latest"] == "1"
    assert r.content == b""


async def test_idle_sweep(fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_test.go TestTrickle_IdleSweep (IdleTimeout 1 ms, SweepInterval 10 ms)
    server = TrickleServer(idle_timeout=0.001, sweep_interval=0.01)
    async with hosted(server) as srv:
        server.create_channel("testest", mime_type="text/plain")
        await anyio.sleep(0.05)
        assert (await fid_http.get(f"{srv.url}/testest/-2")).status_code == 404
        server.create_channel("_changes", mime_type="application/json")  # "_" channels are exempt
        await anyio.sleep(0.05)
        assert (await fid_http.get(f"{srv.url}/_changes/next")).status_code == 200


async def test_set_sub_start(fid_trickle: Any) -> None:
    # go: trickle/trickle_test.go TestTrickle_SetSubStart (beginning, Current=-2, Next=-1, a given seq)
    url = fid_trickle.channel()
    results: dict[str, list[bytes]] = {}

    async def read(name: str, start: int, count: int, ready: anyio.Event) -> None:
        async with TrickleSubscriber(url, start_seq=start) as sub:
            ready.set()
            out: list[bytes] = []
            async for segment in sub:
                out.append(await segment.read())
                if len(out) == count:
                    break
            results[name] = out

    async with TricklePublisher(url, "text/plain", delete_on_close=False) as pub:
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                ready = anyio.Event()
                tg.start_soon(read, "beginning", -1, 5, ready)
                await ready.wait()
                await anyio.sleep(
                    0.1
                )  # the GET for seq 0 latches on (precreated, trickle_server.go:558)
                await pub.write(b"zeroth", wait=True)
                await pub.write(b"first", wait=True)
                ready_current, ready_next = anyio.Event(), anyio.Event()
                tg.start_soon(read, "current", -2, 4, ready_current)
                tg.start_soon(read, "next", -1, 3, ready_next)
                await ready_current.wait()
                await ready_next.wait()
                await anyio.sleep(0.2)
                for data in (b"second", b"third", b"fourth"):
                    await pub.write(data, wait=True)
                ready_seq = anyio.Event()
                tg.start_soon(read, "seq1", 1, 4, ready_seq)
    assert results["beginning"] == [b"zeroth", b"first", b"second", b"third", b"fourth"]
    assert results["current"] == [b"first", b"second", b"third", b"fourth"]
    assert results["next"] == [b"second", b"third", b"fourth"]
    assert results["seq1"] == [b"first", b"second", b"third", b"fourth"]


# -- trickle_server.go rules (read from the code; no Go test covers them) -------------------------------


async def test_ring_of_five_and_470(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_server.go:92 maxSegmentsPerStream=5; :601-613 470 + Lp-Trickle-Latest/-Seq
    url = fid_trickle.channel()
    await _write_all(fid_http, url, [str(i).encode() for i in range(7)])
    old = await fid_http.get(f"{url}/1")
    assert (old.status_code, old.text) == (470, "Entry not found")
    assert (old.headers["lp-trickle-latest"], old.headers["lp-trickle-seq"]) == ("7", "1")
    for seq in range(2, 7):
        assert (await fid_http.get(f"{url}/{seq}")).content == str(seq).encode()
    ahead = await fid_http.get(f"{url}/9")  # neither retained nor the next write
    assert (ahead.status_code, ahead.headers["lp-trickle-latest"]) == (470, "7")
    nxt = await fid_http.get(f"{url}/next")
    assert (nxt.text, nxt.headers["lp-trickle-latest"]) == ("7", "7")


async def test_minus_one_and_minus_two(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_server.go:545-563 (-1 next write, -2 current write, idx 1 allowed before any write)
    url = fid_trickle.channel()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            got: dict[str, httpx.Response] = {}

            async def get(name: str, path: str) -> None:
                got[name] = await fid_http.get(f"{url}/{path}")

            tg.start_soon(get, "minus2", "-2")  # nothing written: -2 resolves to 0 and waits
            tg.start_soon(get, "one", "1")  # one ahead of an empty channel: waits too
            await anyio.sleep(0.1)
            await _write_all(fid_http, url, [b"a", b"b"])
    assert (got["minus2"].content, got["minus2"].headers["lp-trickle-seq"]) == (b"a", "0")
    assert (got["one"].content, got["one"].headers["lp-trickle-seq"]) == (b"b", "1")
    current = await fid_http.get(f"{url}/-2")
    assert (current.content, current.headers["lp-trickle-seq"]) == (b"b", "1")
    assert (
        "lp-trickle-latest" in current.headers
    )  # set whenever the segment is not nextWrite (:640)


async def test_unknown_channel_and_bad_index(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_server.go:307-316, 354-364, 568-577 (404 before 400; POST 404 adds Connection: close)
    base = fid_trickle.base
    get = await fid_http.get(f"{base}/nope/0")
    assert (get.status_code, get.text, get.headers.get("connection")) == (
        404,
        "Stream not found\n",
        None,
    )
    assert (await fid_http.get(f"{base}/nope/x")).status_code == 404
    assert (await fid_http.delete(f"{base}/nope/0")).status_code == 404
    assert (await fid_http.get(f"{base}/nope/next")).status_code == 404
    url = fid_trickle.channel()
    for method in ("GET", "POST", "DELETE"):
        r = await fid_http.request(method, f"{url}/x")
        assert (r.status_code, r.text) == (400, "Invalid idx\n"), method
    assert (await fid_http.put(f"{url}/0")).status_code == 405


async def test_delete_one_segment(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_server.go:307-327 closeSeq: 400 for a segment not in the ring, else close it
    url = fid_trickle.channel()
    missing = await fid_http.delete(f"{url}/3")
    assert (missing.status_code, missing.text) == (400, "Nonexistent segment\n")
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            got: list[httpx.Response] = []

            async def wait_for_zero() -> None:
                got.append(await fid_http.get(f"{url}/0"))

            tg.start_soon(wait_for_zero)
            await anyio.sleep(0.1)
            assert (await fid_http.delete(f"{url}/0")).status_code == 200
    # Released with an empty 200 and no Lp-Trickle-Closed: the channel is still open (:654-666).
    assert (got[0].status_code, got[0].content) == (200, b"")
    assert got[0].headers["lp-trickle-seq"] == "0"
    assert "lp-trickle-closed" not in got[0].headers


async def test_waiting_reader_sees_closed_on_delete(
    fid_trickle: Any, fid_http: httpx.AsyncClient
) -> None:
    # go: trickle/trickle_server.go:255-263, 654-666 (close wakes readers; empty 200 + Lp-Trickle-Closed)
    url = fid_trickle.channel()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            got: list[httpx.Response] = []

            async def wait() -> None:
                got.append(await fid_http.get(f"{url}/-1"))

            tg.start_soon(wait)
            await anyio.sleep(0.1)
            await fid_http.delete(url)
    assert (got[0].status_code, got[0].content) == (200, b"")
    assert got[0].headers["lp-trickle-closed"] == "terminated"


async def test_repost_to_a_finished_segment_is_dropped(
    fid_trickle: Any, fid_http: httpx.AsyncClient
) -> None:
    # go: trickle/trickle_server.go:526-529 (same idx returned even when closed), :414-416 and :483-503
    # (its closed channel ends the read before a byte: 200, Connection: close, nextWrite = idx+1).
    url = fid_trickle.channel()
    await _write_all(fid_http, url, [b"a", b"b", b"c"])
    again = await fid_http.post(f"{url}/1", content=b"rewrite")
    assert again.status_code == 200
    assert (again.headers["lp-trickle-seq"], again.headers["connection"]) == ("1", "close")
    assert (await fid_http.get(f"{url}/1")).content == b"b"
    assert (await fid_http.get(f"{url}/next")).text == "2"  # the write head moved back to idx+1


async def test_preconnected_post_released_by_channel_close(
    fid_trickle: Any, fid_http: httpx.AsyncClient
) -> None:
    # go: trickle/trickle_server.go:483-503 (EOF before any byte: 200 + Lp-Trickle-Seq, Connection: close,
    # Lp-Trickle-Closed when the channel closed)
    url = fid_trickle.channel()
    send, recv = anyio.create_memory_object_stream[bytes](1)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            got: list[httpx.Response] = []

            async def preconnect() -> None:
                got.append(await fid_http.post(f"{url}/0", content=_feed(recv)))

            tg.start_soon(preconnect)
            await anyio.sleep(0.1)
            await fid_http.delete(url)
            await send.aclose()
    r = got[0]
    assert r.status_code == 200
    assert (r.headers["lp-trickle-seq"], r.headers["connection"]) == ("0", "close")
    assert r.headers["lp-trickle-closed"] == "terminated"


# -- a client surviving the server's quirks, through the public API -----------------------------------


async def test_subscriber_jumps_on_470(fid_trickle: Any, fid_http: httpx.AsyncClient) -> None:
    # go: trickle/trickle_server.go:601-613; a reader behind the ring gets 470 and jumps to Lp-Trickle-Latest
    url = fid_trickle.channel()
    await _write_all(fid_http, url, [str(i).encode() for i in range(8)])
    async with TrickleSubscriber(url, start_seq=0) as sub:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:

                async def publish_eight() -> None:
                    await anyio.sleep(0.2)
                    await fid_http.post(f"{url}/8", content=b"eight")

                tg.start_soon(publish_eight)
                # 470 with Latest=8 > 0: the subscriber jumps to 8 and waits for it (precreated).
                segment = await sub.next()
                assert segment is not None
                assert (segment.seq, await segment.read()) == (8, b"eight")
        assert sub.skipped == 8


async def test_subscriber_ends_when_channel_closes_mid_segment(
    fid_trickle: Any, fid_http: httpx.AsyncClient
) -> None:
    # go: trickle/trickle_server.go:255-263 (close ends open segments) and :568-572 (then 404)
    url = fid_trickle.channel()
    send, recv = anyio.create_memory_object_stream[bytes](4)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:

            async def publish() -> None:
                await fid_http.post(f"{url}/0", content=_feed(recv))

            tg.start_soon(publish)
            await send.send(b"part")
            async with TrickleSubscriber(url, start_seq=0) as sub:
                segment = await sub.next()
                assert segment is not None
                data = b""
                async for chunk in segment:
                    data += chunk
                    if data == b"part":
                        await fid_http.delete(url)
                assert data == b"part"
                assert await sub.next() is None
                assert sub.end_reason in ("closed", "not-found")
            await send.aclose()
