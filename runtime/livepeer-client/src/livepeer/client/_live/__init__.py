"""Live sessions (``gw.live``): the route-independent session core plus the per-route job starters."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from livepeer.client._errors import NoOrchestratorError, Rejection, ValidationError
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
        job: LiveJob
        if capability == LV2V:
            # The built-in LV2V pipeline has its own route.
            try:
                channels, job, response = await lv2v.start(
                    gw, model=model, params=params, request_id=request_id, stream_id=stream_id
                )
            except NoOrchestratorError:
                # "503 insufficient capacity" is also what a model nobody offers gets: say which.
                await gw._raise_if_model_unknown(capability, model)
                raise
        else:
            channels, job, response = await _start_named(
                gw, capability, model, params or {}, request_id, stream_id
            )
        orchestrator.append(job.orchestrator)
        return channels, job, response

    from livepeer.client._live import lv2v

    return LiveSession(
        start,
        capability=capability,
        model=model,
        orchestrator=lambda: orchestrator[-1] if orchestrator else "",
    )


async def _start_named(
    gw: Gateway,
    capability: str,
    model: str | None,
    params: Mapping[str, object],
    request_id: str | None,
    stream_id: str | None,
) -> tuple[LiveChannels, LiveJob, Mapping[str, object]]:
    """Any other name: a persistent live-runner app where discovery lists one, else a BYOC live stream."""
    from livepeer.client._http import Deadline, Op, adrive
    from livepeer.client._live import apps_live, byoc_live
    from livepeer.client._live._failover import start_with_failover
    from livepeer.client._routes import Probe
    from livepeer.client._signer import Identity

    signer = gw._core.signer
    request_id = request_id or uuid.uuid4().hex
    stream_id = stream_id or uuid.uuid4().hex

    def attempt(
        ident: Identity, probe: Probe, deadline: Deadline
    ) -> Op[apps_live.AppStarted | byoc_live.ByocStarted | Rejection]:
        if probe.kind == "apps":
            request = apps_live.new_request(capability, model, request_id, deadline)
            app: apps_live.AppStarted | Rejection = yield from apps_live.start_attempt(
                signer, ident, probe, request
            )
            return app
        stream: byoc_live.ByocStarted | Rejection = yield from byoc_live.start_attempt(
            signer, ident, probe, capability=capability, params=params,
            stream_id=stream_id, request_id=request_id, deadline=deadline,
        )  # fmt: skip
        return stream

    # mypy cannot solve start_with_failover's type variable through a three-way union; the attempt
    # above returns exactly these two kinds (or a Rejection, which never leaves the failover loop).
    started = cast(
        "apps_live.AppStarted | byoc_live.ByocStarted",
        await adrive(start_with_failover(gw, capability, model, attempt), gw._async_io()),
    )
    if isinstance(started, apps_live.AppStarted):
        return LiveChannels(), apps_live.AppJob(gw, started), started.response
    return started.channels, byoc_live.ByocLiveJob(gw, started), started.response
