"""Fixtures for the go-livepeer fidelity vectors (fixtures only; names start with ``fid_``).

The devnet fixtures come from ``livepeer.devnet.pytest_plugin``; component servers (a bare trickle server,
a bare signer app) are served on loopback here so vectors can set what the Go tests configure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from livepeer.devnet.pytest_plugin import devnet, devnet_factory, devnet_onchain  # noqa: F401
from livepeer.runner.hosting import hosted
from livepeer.trickle import TrickleServer


@dataclass
class FidTrickle:
    server: TrickleServer
    base: str

    def channel(self, name: str = "testest", mime_type: str = "text/plain") -> str:
        """Create ``name`` server-side (go-livepeer's LocalPublisher.CreateChannel) and return its URL."""
        self.server.create_channel(name, mime_type=mime_type)
        return f"{self.base}/{name}"


@pytest.fixture
async def fid_trickle() -> AsyncIterator[FidTrickle]:
    """A TrickleServer on loopback (auto-create off, as go-livepeer's orchestrator runs it)."""
    server = TrickleServer()
    async with hosted(server) as srv:
        yield FidTrickle(server, srv.url)
    server.close_all()


@pytest.fixture
async def fid_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, verify=False) as client:
        yield client


@pytest.fixture
def fid_sync_http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15, verify=False) as client:
        yield client
