"""Hostile-orchestrator fixtures: ``hostile()`` starts a misbehaving HTTPS orchestrator (see server.py);
the devnet fixtures provide healthy orchestrators next to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from livepeer.client import _signer
from livepeer.devnet.pytest_plugin import devnet, devnet_factory, devnet_onchain  # noqa: F401

from .server import HostileOrch


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "LIVEPEER_TOKEN",
        "LIVEPEER_SIGNER_URL",
        "LIVEPEER_DISCOVERY_URL",
        "LIVEPEER_ORCH_URL",
        "LIVEPEER_PRIVATE_KEY",
        "LIVEPEER_LOG",
        "LIVEPEER_PINS",
    ):
        monkeypatch.delenv(name, raising=False)
    _signer._identity_cache.clear()


@pytest.fixture
def hostile() -> Iterator[Callable[[], HostileOrch]]:
    """``orch = hostile()``: a fresh hostile orchestrator, stopped at teardown (or after 60 s anyway)."""
    with ExitStack() as stack:
        yield lambda: stack.enter_context(HostileOrch())
