"""Interop with pytrickle 0.1.6 (PyPI): its publisher feeds our server + subscriber, ours feeds its subscriber.

pytrickle is installed with ``--no-deps`` into a temporary directory (the workspace lock is untouched). Its
package ``__init__`` pulls in media dependencies we do not need, so only the modules its publisher and
subscriber use (``base``, ``publisher``, ``subscriber``; they need aiohttp) are loaded, under a bare package.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import types
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from livepeer.runner.hosting import hosted
from livepeer.trickle import TricklePublisher, TrickleServer, TrickleSubscriber

pytestmark = [pytest.mark.interop, pytest.mark.anyio]

PYTRICKLE = "pytrickle==0.1.6"


@pytest.fixture(scope="module")
def pytrickle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.SimpleNamespace]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH; cannot install pytrickle")
    target = tmp_path_factory.mktemp("pytrickle")
    proc = subprocess.run(
        [uv, "pip", "install", "--no-deps", "--target", str(target), PYTRICKLE],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"PyPI unreachable or {PYTRICKLE} unavailable: {proc.stderr.strip()[-300:]}")
    package_dir = Path(target) / "pytrickle"
    saved = {name: mod for name, mod in sys.modules.items() if name.startswith("pytrickle")}
    package = types.ModuleType("pytrickle")
    package.__path__ = [str(package_dir)]
    sys.modules["pytrickle"] = package
    try:
        publisher = importlib.import_module("pytrickle.publisher")
        subscriber = importlib.import_module("pytrickle.subscriber")
        yield types.SimpleNamespace(
            TricklePublisher=publisher.TricklePublisher,
            TrickleSubscriber=subscriber.TrickleSubscriber,
        )
    finally:
        for name in [n for n in sys.modules if n.startswith("pytrickle")]:
            del sys.modules[name]
        sys.modules.update(saved)


async def _gop_gap() -> None:
    """Leave pytrickle time to preconnect the next seq between segments, as a real encoder does (its
    ``next()`` called back to back races its own background preconnect and reuses the same seq)."""
    import anyio

    await anyio.sleep(0.2)


@pytest.fixture
async def channel() -> AsyncIterator[tuple[TrickleServer, str]]:
    # pytrickle's close() cancels its preconnect POST task and closes the session, after which aiohttp's
    # body writer fails in a task nobody awaits ("Task exception was never retrieved"). That is pytrickle's
    # own teardown noise; filter exactly that, pass everything else to the runner's handler.
    import asyncio
    import gc

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if type(exc).__name__ == "ClientConnectionResetError" and "aiohttp" in type(exc).__module__:
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    server = TrickleServer()
    server.create_channel("abc-out", mime_type="video/mp2t")
    try:
        async with hosted(server) as srv:
            yield server, f"{srv.url}/abc-out"
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)


async def test_pytrickle_publisher_into_our_server_and_subscriber(
    pytrickle: Any, channel: tuple[TrickleServer, str]
) -> None:
    _, url = channel
    payloads = [bytes([i]) * (20_000 + i) for i in range(3)]
    async with pytrickle.TricklePublisher(url, "video/mp2t") as pub:
        for data in payloads:
            segment = await pub.next()
            async with segment:
                await segment.write(data[:1000])
                await segment.write(data[1000:])
            await _gop_gap()
        got: list[tuple[int, bytes]] = []
        async with TrickleSubscriber(url, start_seq=0, segment_timeout=10) as sub:
            async for seg in sub:
                got.append((seg.seq, await seg.read()))
                if len(got) == len(payloads):
                    break
    assert got == list(enumerate(payloads))


async def test_our_publisher_into_pytrickle_subscriber(
    pytrickle: Any, channel: tuple[TrickleServer, str]
) -> None:
    server, url = channel
    payloads = [b"first segment" * 100, b"second" * 5000, b"third"]
    async with TricklePublisher(url, "video/mp2t", delete_on_close=False) as pub:
        for data in payloads:
            await pub.write(data, wait=True)
    got: list[tuple[int, bytes]] = []
    async with pytrickle.TrickleSubscriber(url, start_seq=0) as sub:
        for _ in payloads:
            segment = await sub.next()
            assert segment is not None
            parts = []
            while chunk := await segment.read():
                parts.append(chunk)
            got.append((segment.seq(), b"".join(parts)))
        # After a DELETE, pytrickle sees the end of the stream (Lp-Trickle-Closed) as well.
        server.close_channel("abc-out")
        assert await sub.next() is None
    assert got == list(enumerate(payloads))


async def test_live_handoff_pytrickle_to_ours_while_streaming(
    pytrickle: Any, channel: tuple[TrickleServer, str]
) -> None:
    """Our subscriber waits at -1 before pytrickle publishes, as a gateway does with an orchestrator."""
    import anyio

    _, url = channel
    got: list[bytes] = []

    async def reader() -> None:
        async with TrickleSubscriber(url, start_seq=-1, segment_timeout=10) as sub:
            async for seg in sub:
                got.append(await seg.read())
                if len(got) == 2:
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.3)
        async with pytrickle.TricklePublisher(url, "video/mp2t") as pub:
            for data in (b"gop-0", b"gop-1"):
                segment = await pub.next()
                async with segment:
                    await segment.write(data)
                await _gop_gap()
            with anyio.fail_after(10):
                while len(got) < 2:  # noqa: ASYNC110 - pytrickle offers no completion event
                    await anyio.sleep(0.02)
    assert got == [b"gop-0", b"gop-1"]
