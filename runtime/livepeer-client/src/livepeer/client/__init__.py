"""The Livepeer SDK: call any capability of the Livepeer network with run, stream or live.

``from livepeer.client import Gateway; Gateway(token=TOKEN).run("text-reversal", input={"text": "hi"})``

Module-level ``run`` / ``stream`` (and async twins) and ``live`` use a default ``Gateway()`` built lazily from the
``LIVEPEER_*`` environment variables.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._errors import (
    APIStatusError,
    CapabilityError,
    CertificateError,
    ConfigError,
    ConnectionError,
    LimitError,
    LivepeerError,
    NoOrchestratorError,
    PaymentError,
    ProtocolError,
    Rejection,
    SignerError,
    SignerPriceError,
    SignerRefreshError,
    SignerSkipError,
    TimeoutError,
    UsageError,
    ValidationError,
)
from ._files import FileOutput
from ._gateway import Gateway, Offering, Route
from ._spend import BudgetExceededError, Charge, Spend, SpendSummary, eth, gwei
from ._sse import SSEDecoder, StreamEvent
from ._streaming import AsyncStreamResponse, StreamResponse

if TYPE_CHECKING:
    from ._live import LiveControl, LivePublisher, LiveSession

__version__ = "0.1.0"

# Live sessions pull in anyio's stream machinery; `import livepeer.client` must not pay for that.
_LAZY = frozenset({"LiveControl", "LivePublisher", "LiveSession"})


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from . import _live

        return getattr(_live, name)
    raise AttributeError(f"module 'livepeer.client' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The public API only: helpers this module imports (Mapping, threading, ...) are not part of it.
    return sorted(__all__)


__all__ = [
    "APIStatusError",
    "AsyncStreamResponse",
    "BudgetExceededError",
    "CapabilityError",
    "CertificateError",
    "Charge",
    "ConfigError",
    "ConnectionError",
    "FileOutput",
    "Gateway",
    "LimitError",
    "LiveControl",
    "LivePublisher",
    "LiveSession",
    "LivepeerError",
    "NoOrchestratorError",
    "Offering",
    "PaymentError",
    "ProtocolError",
    "Rejection",
    "Route",
    "SSEDecoder",
    "SignerError",
    "SignerPriceError",
    "SignerRefreshError",
    "SignerSkipError",
    "Spend",
    "SpendSummary",
    "StreamEvent",
    "StreamResponse",
    "TimeoutError",
    "UsageError",
    "ValidationError",
    "__version__",
    "default_gateway",
    "eth",
    "gwei",
    "live",
    "run",
    "run_async",
    "stream",
    "stream_async",
]

_default: Gateway | None = None
_default_lock = threading.Lock()


def default_gateway() -> Gateway:
    """The process-wide ``Gateway()`` configured from the environment (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Gateway()
        return _default


def run(
    capability: str,
    *,
    input: Mapping[str, object] | None = None,
    model: str | None = None,
    timeout: float | None = None,
    route: Route | None = None,
) -> object:
    """``livepeer.client.run("text-reversal", input={"text": "hi"})`` with the default Gateway."""
    return default_gateway().run(capability, input=input, model=model, timeout=timeout, route=route)


async def run_async(
    capability: str,
    *,
    input: Mapping[str, object] | None = None,
    model: str | None = None,
    timeout: float | None = None,
    route: Route | None = None,
) -> object:
    """Async twin of ``run``."""
    return await default_gateway().run_async(
        capability, input=input, model=model, timeout=timeout, route=route
    )


def stream(
    capability: str,
    *,
    input: Mapping[str, object] | None = None,
    model: str | None = None,
    timeout: float | None = None,
    route: Route | None = None,
) -> StreamResponse:
    """``for ev in livepeer.client.stream("token-stream", input={...}): ...`` with the default Gateway."""
    return default_gateway().stream(
        capability, input=input, model=model, timeout=timeout, route=route
    )


def stream_async(
    capability: str,
    *,
    input: Mapping[str, object] | None = None,
    model: str | None = None,
    timeout: float | None = None,
    route: Route | None = None,
) -> AsyncStreamResponse:
    """Async twin of ``stream``."""
    return default_gateway().stream_async(
        capability, input=input, model=model, timeout=timeout, route=route
    )


def live(
    capability: str,
    *,
    model: str | None = None,
    params: Mapping[str, object] | None = None,
    request_id: str | None = None,
    stream_id: str | None = None,
) -> LiveSession:
    """``async with livepeer.client.live("live-video-to-video", model="noop") as s:`` (default Gateway)."""
    return default_gateway().live(
        capability, model=model, params=params, request_id=request_id, stream_id=stream_id
    )
