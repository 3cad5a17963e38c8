from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from livepeer.client import Gateway, _selection

Start = Callable[[int], list[Any]]


def _open_connections_to(port: int) -> int:
    """Established TCP sockets of this process whose peer is 127.0.0.1:port."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        remote, state, inode = parts[2], parts[3], parts[9]
        if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
            count += 1
    return count


pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")


def test_close_releases_sync_connections(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    port = int(orch.url.rsplit(":", 1)[1])
    gw = Gateway(orch_url=orch.url)
    gw.run("text-reversal", input={"text": "x"})
    assert _open_connections_to(port) >= 1  # pooled keep-alive connection
    gw.close()
    assert _open_connections_to(port) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_aclose_releases_async_connections(fake_orchs: Start, anyio_backend: str) -> None:
    (orch,) = fake_orchs(1)
    port = int(orch.url.rsplit(":", 1)[1])
    async with Gateway(orch_url=orch.url) as gw:
        assert await gw.run_async("text-reversal", input={"text": "ab"}) == {
            "original": "ab",
            "reversed": "ba",
        }
        assert _open_connections_to(port) >= 1
    assert _open_connections_to(port) == 0


def test_stream_closed_early_releases_connection(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.sse_lines = ["data: a", "", "data: b", "", "data: c", ""]
    port = int(orch.url.rsplit(":", 1)[1])
    with Gateway(orch_url=orch.url) as gw:
        with gw.stream("text-reversal", input={}) as s:
            assert next(iter(s)).data == "a"
        # The streamed connection is closed, not returned to the pool half-read.
        assert s.closed
    assert _open_connections_to(port) == 0


@pytest.mark.anyio
async def test_many_concurrent_run_async(
    fake_orchs: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timing-free: the probe bound (and the followers' wait for the leader's probe, twice that) and the
    # call deadline are set beyond anything a busy machine reaches, so single flight is what is tested.
    monkeypatch.setattr(_selection, "PROBE_TIMEOUT", 60.0)
    a, b = fake_orchs(2)
    errors: list[BaseException] = []
    results: list[object] = []

    async with Gateway(orch_url=[a.url, b.url], timeout=300) as gw:

        async def one(i: int) -> None:
            try:
                results.append(await gw.run_async("text-reversal", input={"text": f"t{i}"}))
            except Exception as exc:  # collected: the assertion below reports them
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    assert errors == []
    assert len(results) == 200
    # Concurrent callers share one probe per orchestrator (single flight).
    assert (a.token_calls, b.token_calls) == (1, 1)


def test_one_gateway_across_event_loops(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    gw = Gateway(orch_url=orch.url)

    async def call() -> object:
        return await gw.run_async("text-reversal", input={"text": "ab"})

    assert anyio.run(call) == {"original": "ab", "reversed": "ba"}
    assert anyio.run(call, backend="trio") == {"original": "ab", "reversed": "ba"}
    assert gw.run("text-reversal", input={"text": "c"}) == {"original": "c", "reversed": "c"}
    gw.close()
