"""Live routes of the orchestrator emulator (filled in below)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from livepeer.devnet._orchestrator import Orchestrator

__all__ = ["LiveRoutes"]


class LiveRoutes:
    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch

    def routes(self) -> list[BaseRoute]:
        return []

    async def stop_all(self) -> None:
        return None
