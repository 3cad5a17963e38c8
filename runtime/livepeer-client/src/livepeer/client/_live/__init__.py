"""Live sessions (``gw.live``): the route-independent session core plus the per-route job starters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from livepeer.client._errors import ValidationError
from livepeer.client._live._session import (
    LiveChannels,
    LiveJob,
    LivePublisher,
    LiveSession,
    check_channel_url,
)

if TYPE_CHECKING:
    from livepeer.client._gateway import Gateway

__all__ = [
    "LiveChannels",
    "LiveJob",
    "LivePublisher",
    "LiveSession",
    "check_channel_url",
    "open_session",
]

LV2V = "live-video-to-video"


def open_session(
    gw: Gateway,
    capability: str,
    *,
    model: str | None = None,
    params: Mapping[str, object] | None = None,
    request_id: str | None = None,
    stream_id: str | None = None,
) -> LiveSession:
    """A not-yet-started session; ``async with`` starts it (selection, payment, job start)."""
    if capability != LV2V:
        # BYOC live streams (/ai/stream/*) and persistent live-runner apps are not wired yet.
        raise ValidationError(
            f"live sessions are available for {LV2V!r} only in this version, not {capability!r}"
        )
    if not model:
        raise ValidationError(f"{LV2V} needs a model (e.g. model='noop')")
    from livepeer.client._live import lv2v

    orchestrator: list[str] = []

    async def start() -> tuple[LiveChannels, LiveJob, Mapping[str, object]]:
        channels, job, response = await lv2v.start(
            gw, model=model, params=params, request_id=request_id, stream_id=stream_id
        )
        orchestrator.append(job.orchestrator)
        return channels, job, response

    return LiveSession(
        start,
        capability=capability,
        model=model,
        orchestrator=lambda: orchestrator[-1] if orchestrator else "",
    )
