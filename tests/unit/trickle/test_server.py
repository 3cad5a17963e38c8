"""TrickleServer status paths (PROTOCOL §9.1), driven with raw httpx over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from livepeer.runner.hosting import hosted
from livepeer.trickle import TrickleServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_channel_routes(trickle: Any, http: httpx.AsyncClient) -> None:
    url = trickle.channel("abc-out")
    assert "abc-out" in trickle.server
    assert (await http.post(url)).status_code == 200
    missing = await http.post(f"{trickle.base}/nope")
    assert missing.status_code == 404  # no auto-create
    assert "nope" not in trickle.server
    assert (await http.get(url)).status_code == 405
    assert (await http.delete(url)).status_code == 200
    assert "abc-out" not in trickle.server
    again = await http.delete(url)
    assert again.status_code == 400
    assert again.text == "Invalid stream\n"


async def test_unknown_channel_and_bad_seq(trickle: Any, http: httpx.AsyncClient) -> None:
    url = trickle.channel("c")
    assert (await http.get(f"{trickle.base}/nope/0")).status_code == 404
    assert (await http.get(f"{trickle.base}/nope/next")).status_code == 404
    post = await http.post(f"{trickle.base}/nope/0", content=b"x")
    assert post.status_code == 404
    assert post.headers["connection"] == "close"
    for bad in ("abc", "1.5", "-3", " 1", "1_0"):
        assert (await http.get(f"{url}/{bad}")).status_code == 400, bad
    assert (await http.post(f"{url}/-2", content=b"x")).status_code == 400
    assert (await http.post(f"{url}/zz", content=b"x")).status_code == 400
    assert (await http.get(f"{trickle.base}/")).status_code == 404
    assert (await http.get(f"{url}/0/extra")).status_code == 404


async def test_publish_then_read_and_next(trickle: Any, http: httpx.AsyncClient) -> None:
    url = trickle.channel("c", mime_type="video/mp2t")
    nxt = await http.get(f"{url}/next")
    assert (nxt.status_code, nxt.text, nxt.headers["lp-trickle-latest"]) == (200, "0", "0")
    posted = await http.post(f"{url}/0", content=b"hello")
    assert posted.status_code == 200
    assert posted.headers["lp-trickle-seq"] == "0"
    got = await http.get(f"{url}/0")
    assert (got.status_code, got.content) == (200, b"hello")
    assert got.headers["lp-trickle-seq"] == "0"
    assert got.headers["content-type"] == "video/mp2t"
    assert got.headers["lp-trickle-latest"] == "1"  # not the latest: the writer moved on
    assert (await http.get(f"{url}/next")).text == "1"
    # -1 on POST means "the next write position".
    posted = await http.post(f"{url}/-1", content=b"second")
    assert posted.headers["lp-trickle-seq"] == "1"
    current = await http.get(f"{url}/-2")
    assert (current.headers["lp-trickle-seq"], current.content) == ("1", b"second")


async def test_470_outside_the_ring(trickle: Any, http: httpx.AsyncClient) -> None:
    url = trickle.channel("c")
    for seq in range(7):
        await http.post(f"{url}/{seq}", content=str(seq).encode())
    old = await http.get(f"{url}/0")
    assert old.status_code == 470
    assert old.text == "Entry not found"
    assert (old.headers["lp-trickle-latest"], old.headers["lp-trickle-seq"]) == ("7", "0")
    assert (await http.get(f"{url}/2")).content == b"2"  # still in the 5-segment ring
    far = await http.get(f"{url}/20")
    assert far.status_code == 470
    assert far.headers["lp-trickle-latest"] == "7"


async def test_preconnect_blocks_until_data_and_streams(
    trickle: Any, http: httpx.AsyncClient
) -> None:
    url = trickle.channel("c")
    first_chunk = anyio.Event()
    release = anyio.Event()
    received: list[bytes] = []

    async def reader() -> None:
        async with http.stream("GET", f"{url}/-1") as response:
            assert response.headers["lp-trickle-seq"] == "0"
            async for chunk in response.aiter_raw():
                received.append(chunk)
                first_chunk.set()

    async def body() -> AsyncIterator[bytes]:
        yield b"part1"
        await release.wait()
        yield b"part2"

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.2)
        assert received == []  # waiting for a segment that does not exist yet
        tg.start_soon(partial(http.post, f"{url}/0", content=body()))
        with anyio.fail_after(5):
            await first_chunk.wait()
        # The reader holds the first part while the publisher is still writing the segment.
        assert b"".join(received) == b"part1"
        release.set()
    assert b"".join(received) == b"part1part2"


async def test_waiting_reader_released_by_delete(trickle: Any, http: httpx.AsyncClient) -> None:
    url = trickle.channel("c")
    result: list[httpx.Response] = []

    async def reader() -> None:
        result.append(await http.get(f"{url}/0"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.2)
        assert (await http.delete(url)).status_code == 200
    (response,) = result
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["lp-trickle-closed"] == "terminated"
    # Unknown afterwards.
    assert (await http.get(f"{url}/0")).status_code == 404


async def test_closed_channel_still_held_answers_closed(http: httpx.AsyncClient) -> None:
    server = TrickleServer()
    server.create_channel("c")
    channel = server._channels["c"]
    server.close_channel("c")
    server._channels["c"] = channel  # a request racing the delete still sees the closed channel
    async with hosted(server) as srv:
        response = await http.get(f"{srv.url}/c/3")
        assert response.status_code == 200
        assert response.headers["lp-trickle-closed"] == "terminated"
        assert (await http.get(f"{srv.url}/c/next")).headers["lp-trickle-closed"] == "terminated"


async def test_delete_segment(trickle: Any, http: httpx.AsyncClient) -> None:
    url = trickle.channel("c")
    assert (await http.delete(f"{trickle.base}/nope/0")).status_code == 404
    assert (await http.delete(f"{url}/x")).status_code == 400
    assert (await http.delete(f"{url}/0")).status_code == 400  # no such segment yet
    result: list[httpx.Response] = []

    async def reader() -> None:
        result.append(await http.get(f"{url}/0"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.2)
        assert (await http.delete(f"{url}/0")).status_code == 200
    (response,) = result
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["lp-trickle-seq"] == "0"
    assert "lp-trickle-closed" not in response.headers


async def test_preconnected_post_released_when_channel_closes(trickle: Any) -> None:
    url = trickle.channel("c")
    port = int(trickle.base.rsplit(":", 1)[1])
    # httpx only reads a response after sending the whole body, so speak HTTP/1.1 by hand: a chunked
    # POST that has not sent a byte yet, as a preconnecting publisher does.
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(
            b"POST /c/0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: video/mp2t\r\n\r\n"
        )
        await anyio.sleep(0.2)
        assert url.endswith("/c")
        trickle.server.close_channel("c")
        reply = b""
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in reply:
                reply += await stream.receive()
    head = reply.split(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 200")
    assert "lp-trickle-seq: 0" in head
    assert "lp-trickle-closed: terminated" in head
    assert "connection: close" in head


async def test_reset_releases_readers_of_older_segments(
    trickle: Any, http: httpx.AsyncClient, eventually: Any
) -> None:
    url = trickle.channel("c")
    stuck = anyio.Event()
    result: list[bytes] = []

    async def abandoned() -> AsyncIterator[bytes]:
        yield b"half"
        await stuck.wait()

    async def reader() -> None:
        async with http.stream("GET", f"{url}/0") as response:
            result.append(await response.aread())

    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(http.post, f"{url}/0", content=abandoned()))
        await anyio.sleep(0.2)
        tg.start_soon(reader)
        await anyio.sleep(0.2)
        assert result == []  # segment 0 is still open
        reset = await http.post(f"{url}/1", content=b"new", headers={"Lp-Trickle-Reset": "1"})
        assert reset.status_code == 200
        await eventually(lambda: result, within=5)
        stuck.set()
    assert result == [b"half"]


async def test_empty_post_advances_and_reader_sees_empty_segment(
    trickle: Any, http: httpx.AsyncClient
) -> None:
    url = trickle.channel("c")
    result: list[httpx.Response] = []

    async def reader() -> None:
        result.append(await http.get(f"{url}/0"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.2)
        posted = await http.post(f"{url}/0", content=b"")
    assert posted.status_code == 200
    assert posted.headers["connection"] == "close"
    (response,) = result
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["lp-trickle-latest"] == "1"
    assert trickle.server.next_seq("c") == 1


async def test_repeat_post_appends_to_open_segment(trickle: Any, http: httpx.AsyncClient) -> None:
    url = trickle.channel("c")
    gate = anyio.Event()

    async def first() -> AsyncIterator[bytes]:
        yield b"a"
        await gate.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(http.post, f"{url}/0", content=first()))
        await anyio.sleep(0.2)
        tg.start_soon(partial(http.post, f"{url}/0", content=b"b"))
        await anyio.sleep(0.2)
        gate.set()
    assert (await http.get(f"{url}/0")).content == b"ab"


async def test_publisher_disconnect_mid_segment_ends_it(
    trickle: Any, http: httpx.AsyncClient, eventually: Any
) -> None:
    url = trickle.channel("c")
    result: list[bytes] = []

    async def partial() -> AsyncIterator[bytes]:
        yield b"partial"
        await anyio.sleep(30)

    async def reader() -> None:
        async with http.stream("GET", f"{url}/0") as response:
            result.append(await response.aread())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.1)
        with anyio.move_on_after(0.3):
            await http.post(f"{url}/0", content=partial())
        await eventually(lambda: result, within=5)
    assert result == [b"partial"]
    await trickle.wait_idle()


async def test_segment_size_limit(http: httpx.AsyncClient) -> None:
    server = TrickleServer(max_segment_size=1000)
    server.create_channel("c")
    async with hosted(server) as srv:
        ok = await http.post(f"{srv.url}/c/0", content=b"x" * 1000)
        assert ok.status_code == 200
        too_big = await http.post(f"{srv.url}/c/1", content=b"x" * 5000)
        assert too_big.status_code == 413
        stored = await http.get(f"{srv.url}/c/1")
        assert len(stored.content) <= 1000


async def test_idle_sweep(http: httpx.AsyncClient) -> None:
    # Clock-free: automatic sweeps are out of reach (1 h) and idleness is made by ageing a channel's last
    # write, so a stalled event loop cannot sweep the busy channel (it did, under load, with 0.2 s).
    server = TrickleServer(idle_timeout=60, sweep_interval=3600)
    server.create_channel("busy")
    server.create_channel("_internal")
    server.create_channel("quiet")
    reading = anyio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            reading.set()  # the server registers the read before its first await
        await server(scope, receive, send)

    async with hosted(app) as srv:
        result: list[httpx.Response] = []

        async def reader() -> None:
            result.append(await http.get(f"{srv.url}/quiet/0"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await http.post(f"{srv.url}/busy/0", content=b"x")
            for name in ("quiet", "_internal"):
                server._channels[name].write_time -= 61
            with anyio.fail_after(10):
                await reading.wait()
            assert await server.sweep() == ["quiet"]
        # The waiting reader was released by the sweep with an end-of-stream answer.
        (response,) = result
        assert response.headers["lp-trickle-closed"] == "terminated"
        assert "quiet" not in server
        assert "busy" in server
        assert "_internal" in server  # exempt


async def test_sweep_runs_from_lifespan_without_requests(eventually: Any) -> None:
    server = TrickleServer(idle_timeout=0.1, sweep_interval=0.05)
    server.create_channel("quiet")
    async with hosted(server):
        await eventually(lambda: "quiet" not in server, within=5)
    assert server.channels == []


async def test_mounted_under_starlette(http: httpx.AsyncClient) -> None:
    server = TrickleServer()
    server.create_channel("abc-control", mime_type="application/json")
    app = Starlette(routes=[Mount("/ai/trickle", app=server)])
    async with hosted(app) as srv:
        url = f"{srv.url}/ai/trickle/abc-control"
        assert (await http.post(f"{url}/0", content=b'{"a":1}')).status_code == 200
        got = await http.get(f"{url}/0")
        assert got.json() == {"a": 1}
        assert got.headers["content-type"] == "application/json"
        assert (await http.get(f"{url}/next")).text == "1"
        assert (await http.get(f"{srv.url}/ai/trickle/other/0")).status_code == 404


def test_python_api_validation() -> None:
    server = TrickleServer()
    for bad in ("", "a/b", ".."):
        with pytest.raises(ValueError, match="invalid channel name"):
            server.create_channel(bad)
    with pytest.raises(ValueError, match="positive"):
        TrickleServer(idle_timeout=0)
    with pytest.raises(ValueError, match="positive"):
        TrickleServer(max_segment_size=0)
    server.create_channel("x")
    server.create_channel("x")  # idempotent
    assert server.channels == ["x"]
    assert server.close_channel("x") is True
    assert server.close_channel("x") is False
