"""Deprecated import path. Use ``livepeer.client`` (and ``livepeer.trickle``) instead.

The released ``livepeer-gateway`` 1.0.0 client lived under this name. Every public name of its ``__init__``
is still importable here, with a ``DeprecationWarning`` naming what replaces it (docs/migration.md):

- names with a direct equivalent resolve to it (``NoOrchestratorAvailableError`` is
  ``livepeer.client.NoOrchestratorError``, ``TricklePublisher`` is ``livepeer.trickle.TricklePublisher``, ...);
- ``parse_token`` and ``submit_byoc_job`` are thin adapters over the new API with the old call shapes;
- names with no equivalent import fine but raise ``livepeer.client.LivepeerError`` with the new call to use
  as soon as they are called or instantiated.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

__version__ = "2.0.0.dev0"

warnings.warn(
    "livepeer_gateway is deprecated; import livepeer.client instead (see docs/migration.md)",
    DeprecationWarning,
    stacklevel=2,
)

# name -> ("module:attribute" it maps to, what to use now). Names of livepeer_gateway 1.0.0's __init__.
_MAPPED: dict[str, tuple[str, str]] = {
    "LivepeerGatewayError": ("livepeer.client:LivepeerError", "livepeer.client.LivepeerError"),
    "LivepeerHTTPError": ("livepeer.client:APIStatusError", "livepeer.client.APIStatusError"),
    "NoOrchestratorAvailableError": (
        "livepeer.client:NoOrchestratorError",
        "livepeer.client.NoOrchestratorError",
    ),
    "NoRunnerAvailableError": (
        "livepeer.client:NoOrchestratorError",
        "livepeer.client.NoOrchestratorError (runners are selected like orchestrators)",
    ),
    "PaymentError": ("livepeer.client:PaymentError", "livepeer.client.PaymentError"),
    "OrchestratorRejection": ("livepeer.client:Rejection", "livepeer.client.Rejection"),
    "RunnerRejection": ("livepeer.client:Rejection", "livepeer.client.Rejection"),
    "TricklePublisher": ("livepeer.trickle:TricklePublisher", "livepeer.trickle.TricklePublisher"),
    "TrickleSubscriber": (
        "livepeer.trickle:TrickleSubscriber",
        "livepeer.trickle.TrickleSubscriber",
    ),
    "SegmentReader": ("livepeer.trickle:TrickleSubscriber", "livepeer.trickle.TrickleSubscriber"),
    "TricklePublishError": ("livepeer.trickle:TrickleError", "livepeer.trickle.TrickleError"),
    "TricklePublisherTerminalError": (
        "livepeer.trickle:TrickleError",
        "livepeer.trickle.TrickleError (see TricklePublisher.error)",
    ),
    "TrickleSegmentWriteError": ("livepeer.trickle:TrickleError", "livepeer.trickle.TrickleError"),
    "JSONLReader": ("livepeer.trickle:JsonlReader", "livepeer.trickle.JsonlReader"),
    "JSONLWriter": ("livepeer.trickle:JsonlWriter", "livepeer.trickle.JsonlWriter"),
    "ChannelReader": ("livepeer.trickle:JsonSegmentReader", "livepeer.trickle.JsonSegmentReader"),
    "ChannelWriter": ("livepeer.trickle:JsonSegmentWriter", "livepeer.trickle.JsonSegmentWriter"),
    "MediaPublish": (
        "livepeer.trickle.media:MediaPublisher",
        "LiveSession.publish() or livepeer.trickle.media.MediaPublisher",
    ),
    "MediaPublishConfig": (
        "livepeer.trickle.media:VideoConfig",
        "livepeer.trickle.media.VideoConfig",
    ),
    "VideoOutputConfig": (
        "livepeer.trickle.media:VideoConfig",
        "livepeer.trickle.media.VideoConfig",
    ),
    "MediaOutput": (
        "livepeer.trickle.media:MediaSubscriber",
        "LiveSession.subscribe() or livepeer.trickle.media.MediaSubscriber",
    ),
    "LiveVideoToVideo": (
        "livepeer.client:LiveSession",
        "async with Gateway(...).live('live-video-to-video', model=...) as session",
    ),
}

# Names with no equivalent: what to use instead.
_REPLACED: dict[str, str] = {
    "start_lv2v": "async with Gateway(token=...).live('live-video-to-video', model=...) as session",
    "StartJobRequest": "Gateway().live(..., model=..., params=..., request_id=..., stream_id=...)",
    "get_orch_info": "Gateway().list_capabilities() (orchestrator info is fetched for you)",
    "discover_orchestrators": "Gateway().list_capabilities()",
    "discover_runners": "Gateway().list_capabilities()",
    "orchestrator_selector": "Gateway(orch_url=[...]) (selection and failover are automatic)",
    "runner_selector": "Gateway(orch_url=[...]) (selection and failover are automatic)",
    "SelectionCursor": "Gateway(orch_url=[...]) (selection and failover are automatic)",
    "RunnerSelectionCursor": "Gateway(orch_url=[...]) (selection and failover are automatic)",
    "reserve_session": "Gateway().live(app_name) (live-runner sessions)",
    "list_capabilities": "Gateway().list_capabilities()",
    "build_capabilities": "Gateway().live(..., model=...) builds capability constraints for you",
    "CapabilityId": "capability names such as 'text-to-image' with Gateway().run(...)",
    "Control": "LiveSession.control.write(...) (keepalives are automatic)",
    "ControlConfig": "LiveSession.control.write(...) (keepalives are automatic)",
    "ControlMode": "LiveSession.control.write(...) (keepalives are automatic)",
    "Events": "LiveSession.events()",
    "ChannelEventCallback": "async for event in session.events()",
    "MediaPublishTrack": "LiveSession.publish()",
    "MediaPublishStats": "LivePublisher.frames_written",
    "TrackQueueStats": "LivePublisher.frames_written",
    "AudioOutputConfig": "LiveSession.publish(audio=livepeer.trickle.media.AudioConfig(...))",
    "MediaOutputStats": "LiveSession.subscribe()",
    "MediaBytesCallback": "LiveSession.subscribe_segments()",
    "MediaFrameCallback": "async for frame in session.subscribe()",
    "MediaPacketCallback": "LiveSession.subscribe_segments()",
    "AudioDecodedMediaFrame": "av.AudioFrame from PyAV",
    "DecodedMediaFrame": "av.VideoFrame from LiveSession.subscribe()",
    "DemuxedMediaPacket": "LiveSession.subscribe_segments()",
    "VideoDecodedMediaFrame": "av.VideoFrame from LiveSession.subscribe()",
    "PaymentSession": "payments are automatic in Gateway().run/stream/live",
    "LivePaymentSession": "payments are automatic in Gateway().live(...)",
    "LivePaymentChallenge": "payments are automatic in Gateway().live(...)",
    "ByocTrainingRequest": "not supported: BYOC training is not on master go-livepeer",
    "ByocTrainingResponse": "not supported: BYOC training is not on master go-livepeer",
    "ByocTrainingStatus": "not supported: BYOC training is not on master go-livepeer",
    "submit_training_job": "not supported: BYOC training is not on master go-livepeer",
    "refresh_training_payment": "not supported: BYOC training is not on master go-livepeer",
    "get_training_status": "not supported: BYOC training is not on master go-livepeer",
    "wait_for_training": "not supported: BYOC training is not on master go-livepeer",
    "LiveRunnerCallResult": "Gateway().run(app_name, input=...)",
    "LiveRunnerCallStream": "Gateway().stream(app_name, input=...)",
    "LiveRunnerGPU": "Gateway().list_capabilities()",
    "LiveRunnerInstance": "Gateway().list_capabilities()",
    "LiveRunnerPriceInfo": "Gateway().list_capabilities()",
    "LiveRunnerRegistration": "livepeer.runner.register(...)",
    "LiveRunnerSession": "Gateway().live(app_name)",
    "LiveRunnerSessionCallback": "Gateway().live(app_name)",
    "LiveRunnerSessionEvent": "LiveSession.events()",
    "LiveRunnerProxy": "Gateway().run(app_name, input=...)",
    "call_runner": "Gateway().run(app_name, input=...)",
    "create_proxy": "Gateway().run(app_name, input=...)",
    "create_trickle_channels": "orchestrators create channels; use Gateway().live(...)",
    "remove_trickle_channels": "LiveSession.close()",
    "register_runner": "livepeer.runner.register(...)",
    "stop_runner_session": "LiveSession.close()",
    "start_scope": "Gateway().live('live-video-to-video', model='scope')",
    "TricklePublisherStats": "TricklePublisher.stats",
    "TrickleSubscriberStats": "TrickleSubscriber.skipped / .reissued",
    "SegmentReaderStats": "TrickleSubscriber.skipped / .reissued",
}

__all__ = sorted(
    [*_MAPPED, *_REPLACED, "ByocJobRequest", "ByocJobResponse", "parse_token", "submit_byoc_job"]
)


def _warn(name: str, instead: str) -> None:
    warnings.warn(
        f"livepeer_gateway.{name} is deprecated; use {instead}", DeprecationWarning, stacklevel=3
    )


def _gone(name: str, instead: str) -> NoReturn:
    from livepeer.client import LivepeerError

    raise LivepeerError(
        f"livepeer_gateway.{name} has no equivalent in livepeer-client; use {instead} "
        "(see docs/migration.md)"
    )


class _Replaced:
    """Stands in for a 1.0.0 name with no equivalent: importable, fails clearly when used."""

    def __init__(self, name: str, instead: str) -> None:
        self._name, self._instead = name, instead

    def __call__(self, *args: object, **kwargs: object) -> NoReturn:
        _gone(self._name, self._instead)

    def __getattr__(self, attr: str) -> NoReturn:
        if attr.startswith("__"):
            raise AttributeError(attr)
        _gone(self._name, self._instead)

    def __repr__(self) -> str:
        return f"<livepeer_gateway.{self._name}: removed, use {self._instead}>"


def __getattr__(name: str) -> object:
    if name in _MAPPED:
        target, instead = _MAPPED[name]
        _warn(name, instead)
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)
    if name in _REPLACED:
        _warn(name, _REPLACED[name])
        return _Replaced(name, _REPLACED[name])
    raise AttributeError(f"module 'livepeer_gateway' has no attribute {name!r}")


@dataclass
class ByocJobRequest:
    """The 1.0.0 job description, accepted by :func:`submit_byoc_job`."""

    capability: str
    payload: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: int = 300
    job_id: str | None = None
    parameters: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _warn("ByocJobRequest", "Gateway(...).run(capability, input=payload)")


@dataclass
class ByocJobResponse:
    """The 1.0.0 result shape; ``data`` is what ``Gateway().run`` returns."""

    data: Any
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    orchestrator_url: str | None = None
    raw_body: bytes = b""

    def __post_init__(self) -> None:
        _warn("ByocJobResponse", "the value Gateway(...).run(...) returns")


def parse_token(token: str) -> dict[str, Any]:
    """Deprecated: ``livepeer.client.Gateway(token=...)`` parses tokens (errors name the bad field)."""
    _warn("parse_token", "Gateway(token=...)")
    from livepeer.client._config import parse_token as parse

    parsed = parse(token)
    out: dict[str, Any] = {}
    if parsed.orchestrators:
        out["orchestrators"] = list(parsed.orchestrators)
    for key in ("signer", "signer_headers", "discovery", "discovery_headers"):
        value = getattr(parsed, key)
        if value is not None:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def submit_byoc_job(
    req: ByocJobRequest,
    *,
    orch_url: Sequence[str] | str | None = None,
    discovery_url: str | None = None,
    signer_url: str | None = None,
    signer_headers: dict[str, str] | None = None,
    discovery_headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> ByocJobResponse:
    """Deprecated: ``Gateway(orch_url=...).run(capability, input=payload)``."""
    _warn("submit_byoc_job", "Gateway(...).run(capability, input=payload)")
    from livepeer.client import Gateway

    with Gateway(
        orch_url=orch_url,
        discovery_url=discovery_url,
        signer_url=signer_url,
        signer_headers=signer_headers,
        discovery_headers=discovery_headers,
        timeout=float(timeout or req.timeout_seconds),
    ) as gw:
        data = gw.run(req.capability, input=req.payload)
    return ByocJobResponse(data=data)
