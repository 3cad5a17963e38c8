"""pytest fixtures that run a devnet in a background thread (usable from sync, asyncio and trio tests).

In a ``conftest.py``::

    from livepeer.devnet.pytest_plugin import devnet, devnet_factory, devnet_onchain  # noqa: F401

- ``devnet`` (session): offchain, 2 orchestrators. Treat it as read-only (no fault switches).
- ``devnet_onchain`` (session): on-chain mode (signatures verified, payment required), 2 orchestrators.
- ``devnet_factory`` (function): ``net = devnet_factory(DevnetOptions(...))`` for tests that mutate state;
  every devnet it made is closed at teardown.

Each yields a :class:`RunningDevnet`: ``.orchestrators`` (URLs), ``.signer``, ``.discovery``, ``.control``,
``.token``, ``.info`` (the CLI's JSON line), ``.faults(i)`` / ``.signer_faults`` (fault switches),
``.restart(i)``, ``.net`` (the :class:`~livepeer.devnet.Devnet`, for reading state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from fractions import Fraction
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from livepeer.devnet._network import Devnet, DevnetOptions
from livepeer.devnet._orchestrator import Faults
from livepeer.devnet._signer import SignerFaults

__all__ = ["RunningDevnet", "devnet", "devnet_factory", "devnet_onchain", "run_devnet"]


class RunningDevnet:
    """A devnet served from a background event loop; see the module docstring."""

    def __init__(self, net: Devnet, portal: BlockingPortal) -> None:
        self.net = net
        self._portal = portal

    @property
    def info(self) -> dict[str, Any]:
        return self.net.info()

    @property
    def orchestrators(self) -> list[str]:
        return [h.url for h in self.net.orchestrators]

    @property
    def signer(self) -> str:
        return self.net.signer_url

    @property
    def discovery(self) -> str:
        return self.net.discovery_url

    @property
    def control(self) -> str:
        return self.net.control_url

    @property
    def token(self) -> str:
        return self.net.token

    def faults(self, index: int = 0) -> Faults:
        return self.net.orchestrators[index].faults

    @property
    def signer_faults(self) -> SignerFaults:
        return self.net.signer_faults

    def received(self, index: int = 0) -> Fraction:
        """Expected value (wei) of the tickets orchestrator ``index`` accepted since it (re)started."""
        return self.net.orchestrators[index].orch.tickets.received

    def restart(self, index: int = 0) -> None:
        """Restart orchestrator ``index`` (new certificate, sessions and channels gone)."""
        self._portal.call(self.net.orchestrators[index].restart)


def run_devnet(
    options: DevnetOptions | None = None, backend: str = "trio"
) -> AbstractContextManager[RunningDevnet]:
    """``with run_devnet(DevnetOptions(onchain=True)) as net: ...`` from synchronous code.

    Trio by default: hypercorn on asyncio (Python 3.10) cannot close an idle keep-alive TLS connection
    until the client goes away, so a stop could hang; on trio it is prompt.
    """
    stack = ExitStack()

    class _Context(AbstractContextManager[RunningDevnet]):
        def __enter__(self) -> RunningDevnet:
            try:
                portal = stack.enter_context(start_blocking_portal(backend))
                net = stack.enter_context(portal.wrap_async_context_manager(Devnet(options)))
            except BaseException:
                stack.close()
                raise
            return RunningDevnet(net, portal)

        def __exit__(self, *exc: object) -> None:
            stack.close()

    return _Context()


@pytest.fixture(scope="session")
def devnet() -> Iterator[RunningDevnet]:
    """A shared offchain devnet with two orchestrators (do not flip its fault switches)."""
    with run_devnet(DevnetOptions(orchestrators=2)) as net:
        yield net


@pytest.fixture(scope="session")
def devnet_onchain() -> Iterator[RunningDevnet]:
    """A shared on-chain devnet with two orchestrators (do not flip its fault switches)."""
    with run_devnet(DevnetOptions(onchain=True, orchestrators=2)) as net:
        yield net


@pytest.fixture
def devnet_factory() -> Iterator[Callable[..., RunningDevnet]]:
    """Start private devnets: ``net = devnet_factory(DevnetOptions(onchain=True))``."""
    with ExitStack() as stack:

        def make(options: DevnetOptions | None = None) -> RunningDevnet:
            return stack.enter_context(run_devnet(options))

        yield make
