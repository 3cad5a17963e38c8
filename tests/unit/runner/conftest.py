"""Fixtures for livepeer.runner tests: host an app on loopback and talk to it over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import httpx
import pytest

from livepeer.runner import serve
from livepeer.runner.hosting import hosted


@asynccontextmanager
async def _running(
    target: object, *, wait_ready: bool = True, **kwargs: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = serve(target, **kwargs)  # type: ignore[arg-type]
    async with hosted(app) as srv, httpx.AsyncClient(base_url=srv.url, timeout=10) as client:
        if wait_ready:
            with anyio.fail_after(10):
                while (await client.get("/health")).json()["status"] == "loading":  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        yield client


@pytest.fixture
def running() -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with running(MyPipeline) as client: await client.post("/", json=...)``."""
    return _running


class Channels:
    """Trickle channels for one live session on a loopback TrickleServer."""

    def __init__(self, base: str, server: object, prefix: str) -> None:
        self.base = base
        self.server = server
        self.prefix = prefix

    def url(self, kind: str) -> str:
        return f"{self.base}/{self.prefix}-{kind}"

    def start_body(self, **params: object) -> dict[str, object]:
        return {
            "subscribe_url": self.url("in"),
            "publish_url": self.url("out"),
            "control_url": self.url("control"),
            "events_url": self.url("events"),
            "data_url": self.url("data"),
            "gateway_request_id": f"req-{self.prefix}",
            "params": dict(params),
        }


@asynccontextmanager
async def _trickle_channels(prefix: str = "s") -> AsyncIterator[Channels]:
    from livepeer.trickle import TrickleServer

    server = TrickleServer()
    for kind, mime in [
        ("in", "video/mp2t"),
        ("out", "video/mp2t"),
        ("control", "application/json"),
        ("events", "application/json"),
        ("data", "application/jsonl"),
    ]:
        server.create_channel(f"{prefix}-{kind}", mime_type=mime)
    async with hosted(server) as srv:
        yield Channels(srv.url, server, prefix)


@pytest.fixture
def trickle_channels() -> Callable[..., AbstractAsyncContextManager[Channels]]:
    """``async with trickle_channels("abc") as ch: ch.url("in"), ch.start_body(strength=1)``."""
    return _trickle_channels
