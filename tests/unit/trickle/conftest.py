"""Fixtures for the trickle suite: a real TrickleServer under hypercorn on loopback, request recording,
fault injection in front of it, and leak checks (pending tasks, server-side open requests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import sniffio

from livepeer.runner.hosting import hosted
from livepeer.trickle import TrickleServer

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Fault = Callable[[Scope, Receive, Send], Awaitable[bool]]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Front:
    """An ASGI wrapper around the trickle server: records requests, counts open ones, injects faults.

    A fault is an async callable ``(scope, receive, send) -> handled``; the first that returns True
    answers the request instead of the server.
    """

    server: TrickleServer
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    open_requests: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.server(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        self.requests.append(Recorded(scope["method"], scope["path"], headers))
        self.open_requests += 1
        try:
            for fault in list(self.faults):
                if await fault(scope, receive, send):
                    return
            await self.server(scope, receive, send)
        finally:
            self.open_requests -= 1

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]


@dataclass
class Trickle:
    server: TrickleServer
    front: Front
    base: str

    def channel(self, name: str, mime_type: str = "video/mp2t") -> str:
        self.server.create_channel(name, mime_type=mime_type)
        return f"{self.base}/{name}"

    async def wait_idle(self, within: float = 5.0) -> None:
        """Wait until the server has no open request (it saw every client disconnect)."""
        await _eventually(lambda: self.front.open_requests == 0, within)


async def _eventually(condition: Callable[[], object], within: float = 5.0) -> None:
    with anyio.fail_after(within):
        while True:
            if condition():
                return
            await anyio.sleep(0.01)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """``await eventually(lambda: cond, within=5)``: poll until true; TimeoutError otherwise."""
    return _eventually


@asynccontextmanager
async def serve_trickle(
    server: TrickleServer | None = None, **kwargs: Any
) -> AsyncIterator[Trickle]:
    server = server or TrickleServer(**kwargs)
    front = Front(server)
    async with hosted(front) as srv:
        yield Trickle(server, front, srv.url)


@pytest.fixture
async def trickle() -> AsyncIterator[Trickle]:
    async with serve_trickle() as t:
        yield t


def _pending_tasks() -> set[Any]:
    if sniffio.current_async_library() != "asyncio":
        return set()
    return {t for t in asyncio.all_tasks() if not t.done()}


@pytest.fixture
def task_snapshot() -> Callable[[], Awaitable[Callable[[], Awaitable[None]]]]:
    """``check = await task_snapshot()`` ... ``await check()`` asserts no task was left running since."""

    async def take() -> Callable[[], Awaitable[None]]:
        before = _pending_tasks()

        async def check() -> None:
            leaked: set[Any] = set()
            with anyio.move_on_after(3.0):
                while True:
                    leaked = {
                        t for t in _pending_tasks() - before if t is not asyncio.current_task()
                    }
                    # hypercorn's per-connection tasks end once it notices the client closed the socket.
                    if not leaked:
                        return
                    await anyio.sleep(0.02)
            raise AssertionError(f"tasks left running: {[t.get_coro() for t in leaked]}")

        return check

    return take
