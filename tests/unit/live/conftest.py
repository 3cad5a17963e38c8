"""Every live test must leave nothing behind: no open HTTP clients, no client-side tasks."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import pytest


def _ours(client: httpx.AsyncClient) -> bool:
    """Clients our trickle layer created (other suites' devnets may legitimately hold theirs)."""
    return client.headers.get("user-agent", "").startswith("livepeer-trickle/")


def open_http_clients() -> list[httpx.AsyncClient]:
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, httpx.AsyncClient) and not o.is_closed and _ours(o)
    ]


def client_side_tasks() -> list[str]:
    """Tasks still running our client or httpx code in the current event loop (if one is running)."""
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:
        return []
    marks = ("/livepeer/client/", "/livepeer/trickle/_publisher", "/livepeer/trickle/_subscriber",
             "/livepeer/trickle/_json", "/livepeer/trickle/media", "httpx", "httpcore")  # fmt: skip
    out = []
    for task in tasks:
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
        if code is not None and any(m in code.co_filename for m in marks):
            out.append(repr(task))
    return out


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    before = {id(c) for c in open_http_clients()}
    yield
    leaked = [c for c in open_http_clients() if id(c) not in before]
    assert not leaked, f"{len(leaked)} httpx client(s) left open by this test"
    assert client_side_tasks() == []
