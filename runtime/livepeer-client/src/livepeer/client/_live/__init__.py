"""Live sessions (``gw.live``): the route-independent session core.

Each route's live half (``_routes.ai``: LV2V, ``_routes.byoc``: BYOC streams, ``_routes.apps``: app sessions)
starts its job; the dispatcher chooses the orchestrator (``Dispatcher.start_live``).
"""

from __future__ import annotations

from livepeer.client._live._session import (
    LiveChannels,
    LiveControl,
    LiveJob,
    LivePublisher,
    LiveSession,
    check_channel_url,
)

__all__ = [
    "LiveChannels",
    "LiveControl",
    "LiveJob",
    "LivePublisher",
    "LiveSession",
    "check_channel_url",
]
