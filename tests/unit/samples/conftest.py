"""Host a sample pipeline on loopback and talk to it over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import httpx
import pytest

from livepeer.runner import serve
from livepeer.runner.hosting import hosted


@asynccontextmanager
async def _sample(cls: type) -> AsyncIterator[httpx.AsyncClient]:
    async with hosted(serve(cls)) as srv, httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
        with anyio.fail_after(10):
            while (await client.get("/health")).status_code != 200:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        yield client


@pytest.fixture
def sample() -> Callable[[type], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with sample(TextReversal) as client: ...``."""
    return _sample


@asynccontextmanager
async def _channels(prefix: str) -> AsyncIterator[dict[str, str]]:
    """A loopback trickle server with the five channels of one stream; yields the ``/stream/start`` body."""
    from livepeer.trickle import TrickleServer

    server = TrickleServer()
    kinds = {"in": "video/mp2t", "out": "video/mp2t", "control": "application/json"}
    kinds |= {"events": "application/json", "data": "application/jsonl"}
    for kind, mime in kinds.items():
        server.create_channel(f"{prefix}-{kind}", mime_type=mime)
    async with hosted(server) as srv:
        url = f"{srv.url}/{prefix}"
        yield {
            "subscribe_url": f"{url}-in",
            "publish_url": f"{url}-out",
            "control_url": f"{url}-control",
            "events_url": f"{url}-events",
            "data_url": f"{url}-data",
            "gateway_request_id": prefix,
        }


@pytest.fixture
def channels() -> Callable[[str], AbstractAsyncContextManager[dict[str, str]]]:
    return _channels
