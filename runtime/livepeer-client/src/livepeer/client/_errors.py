"""One error hierarchy for the client: every failure a caller can see is a ``LivepeerError``."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._redact import redact_url

__all__ = [
    "APIStatusError",
    "CapabilityError",
    "CertificateError",
    "ConfigError",
    "ConnectionError",
    "LimitError",
    "LivepeerError",
    "NoOrchestratorError",
    "PaymentError",
    "ProtocolError",
    "Rejection",
    "SignerError",
    "TimeoutError",
    "UsageError",
    "ValidationError",
]

# Error bodies are kept for diagnosis but never unbounded: an orchestrator can send anything.
BODY_LIMIT = 2048


def bounded(body: bytes | str, limit: int = BODY_LIMIT) -> str:
    """Decode ``body`` leniently and cut it to ``limit`` characters."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return text if len(text) <= limit else text[:limit] + "…"


class LivepeerError(Exception):
    """Base class of every error raised by ``livepeer.client``."""

    def __str__(self) -> str:
        # Messages name URLs and quote replies: configured secrets, URL user info and query strings are
        # scrubbed here once, for every error (and so for the CLI, which prints them).
        from ._redact import scrub

        return scrub(super().__str__())


class ConfigError(LivepeerError):
    """The Gateway configuration (kwargs, token or environment) is unusable."""


class ValidationError(LivepeerError, ValueError):
    """The caller's input was rejected before or by the network (4xx validation)."""


@dataclass(frozen=True)
class Rejection:
    """Why one orchestrator was not used (or failed). ``orchestrator`` is the URL as configured or
    discovered; the message shows it without user info or query string, where credentials hide."""

    orchestrator: str
    reason: str

    def __str__(self) -> str:
        return f"{redact_url(self.orchestrator)}: {self.reason}"


class NoOrchestratorError(LivepeerError):
    """No orchestrator could serve the request; ``rejections`` says why for each candidate."""

    def __init__(self, capability: str, rejections: Sequence[Rejection], *, hint: str = "") -> None:
        self.capability = capability
        self.rejections = tuple(rejections)
        self.hint = hint
        detail = "; ".join(str(r) for r in self.rejections) or "no candidates were found"
        tail = f" ({hint})" if hint else ""
        super().__init__(f"no orchestrator available for {capability!r}: {detail}{tail}")


class CapabilityError(LivepeerError):
    """The network does not offer the capability (or model); ``available`` lists what it does offer.

    ``suggestions`` holds the offered names closest to the one asked for (did you mean ...?).
    """

    def __init__(
        self, capability: str, available: Sequence[str], *, what: str = "capability"
    ) -> None:
        import difflib

        self.capability = capability
        self.available = tuple(sorted(set(available)))
        self.suggestions = tuple(
            difflib.get_close_matches(capability, self.available, n=3, cutoff=0.6)
        )
        hint = (
            " (did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?)"
            if self.suggestions
            else ""
        )
        offered = ", ".join(self.available) or "nothing discoverable"
        super().__init__(
            f"{what} {capability!r} is not offered{hint}; the network offers: {offered}"
        )


class SignerError(LivepeerError):
    """The remote signer failed or refused (its status code is kept)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class SignerRefreshError(SignerError):
    """Signer 480: the orchestrator's ticket parameters or auth token went stale. Fetch fresh ones (a new
    ``OrchestratorInfo`` or payment challenge) and pay again with the same state; callers do it for you."""


class SignerPriceError(SignerError):
    """Signer 481: the orchestrator's price is above the ceiling the signer pays; another one may do."""


class SignerSkipError(SignerError):
    """Signer 482 ("no tickets needed") where the orchestrator demands a payment now."""


class PaymentError(LivepeerError):
    """Payment could not be made or the orchestrator reported insufficient balance."""


class APIStatusError(LivepeerError):
    """An orchestrator answered with an error status. ``orchestrator`` is its URL as configured or
    discovered; the message shows it without user info or query string (credentials)."""

    def __init__(
        self,
        status_code: int,
        body: bytes | str,
        *,
        orchestrator: str,
        request_id: str | None = None,
        hint: str = "",
    ) -> None:
        self.status_code = status_code
        self.body = bounded(body)
        self.orchestrator = orchestrator
        self.request_id = request_id
        rid = f" (request id {request_id})" if request_id else ""
        tail = f" — {hint}" if hint else ""
        super().__init__(
            f"{redact_url(orchestrator)} answered {status_code}{rid}: {bounded(self.body, 300)}{tail}"
        )


class TimeoutError(LivepeerError, builtins.TimeoutError):
    """The overall deadline passed (all attempts together)."""


class ConnectionError(LivepeerError, builtins.ConnectionError):
    """A connection could not be made, or a server handed back an unsafe URL."""


class ProtocolError(ConnectionError):
    """A server broke the wire protocol (e.g. an SSE line over the size limit)."""


class LimitError(ProtocolError):
    """A reply exceeded a size limit of ``livepeer.client.limits`` (named in the message)."""


class CertificateError(ConnectionError):
    """An orchestrator presented a TLS certificate other than the one pinned for it."""


class UsageError(LivepeerError, TypeError):
    """The API was used the wrong way, e.g. ``with`` on an async-only object (use ``async with``)."""


# ---- errors of the typed wrappers (livepeer.capabilities re-exports them; raised by _typed) ----------------


def _seq(value: object) -> Sequence[object]:
    return value if isinstance(value, (list, tuple)) else ()


def _describe(errors: Sequence[Mapping[str, object]], names: Mapping[str, str]) -> str:
    """pydantic error details as one line: each field (by its Python name), message, constraint, input."""
    parts = []
    for err in errors:
        loc = [
            names.get(str(p), str(p)) if i == 0 else str(p)
            for i, p in enumerate(_seq(err.get("loc")))
        ]
        where = ".".join(loc) or "input"
        ctx = err.get("ctx")
        ctx = ctx if isinstance(ctx, Mapping) else {}
        constraint = ", ".join(f"{k}={v!r}" for k, v in ctx.items() if k != "error")
        text = f"{where}: {err.get('msg', 'invalid')}"
        if constraint:
            text += f" (constraint {constraint})"
        if "input" in err and not isinstance(err["input"], (bytes, bytearray)):
            shown = repr(err["input"])
            text += f" (got {shown[:60] + '...' if len(shown) > 60 else shown})"
        parts.append(text)
    return "; ".join(parts)


class CapabilitiesError(LivepeerError):
    """Base class of the errors raised by the typed wrappers (``gw.capabilities.<name>``)."""


class InputValidationError(CapabilitiesError, ValidationError):
    """Arguments that do not match the capability's schema; raised before any network I/O.

    ``.errors`` holds pydantic's details; the message names each field and its constraint.
    """

    def __init__(
        self, capability: str, errors: Sequence[Mapping[str, object]], names: Mapping[str, str]
    ) -> None:
        super().__init__(f"{capability}: invalid input: {_describe(errors, names)}")
        self.capability = capability
        self.errors = errors


class OutputValidationError(CapabilitiesError, ValueError):
    """A result that does not match the capability's output schema (``.errors``, ``.value``)."""

    def __init__(
        self, capability: str, errors: Sequence[Mapping[str, object]], value: object
    ) -> None:
        super().__init__(f"{capability}: unexpected result: {_describe(errors, {})}")
        self.capability = capability
        self.errors = errors
        self.value = value
