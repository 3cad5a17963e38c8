"""Live sessions (``gw.live``): the route-independent session core plus the per-route job starters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from livepeer.client._errors import ValidationError
from livepeer.client._live._session import (
    LiveChannels,
    LiveControl,
    LiveJob,
    LivePublisher,
    LiveSession,
    check_channel_url,
)

if TYPE_CHECKING:
    from livepeer.client._gateway import Gateway

__all__ = [
    "LiveChannels",
    "LiveControl",
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
    if not isinstance(capability, str) or not capability.strip():
        raise ValidationError("capability must be a non-empty string")
    if capability == LV2V and not model:
        raise ValidationError(f"{LV2V} needs a model (e.g. model='noop')")
    if params is not None and not isinstance(params, Mapping):
        raise ValidationError("params must be a mapping")
    orchestrator: list[str] = []

    async def start() -> tuple[LiveChannels, LiveJob, Mapping[str, object]]:
        # The built-in LV2V pipeline has its own route; any other name is a BYOC live capability.
        job: lv2v.Lv2vJob | byoc_live.ByocLiveJob
        if capability == LV2V:
            channels, job, response = await lv2v.start(
                gw, model=model, params=params, request_id=request_id, stream_id=stream_id
            )
        else:
            channels, job, response = await byoc_live.start(
                gw, capability, params=params, request_id=request_id, stream_id=stream_id
            )
        orchestrator.append(job.orchestrator)
        return channels, job, response

    from livepeer.client._live import byoc_live, lv2v

    return LiveSession(
        start,
        capability=capability,
        model=model,
        orchestrator=lambda: orchestrator[-1] if orchestrator else "",
    )
