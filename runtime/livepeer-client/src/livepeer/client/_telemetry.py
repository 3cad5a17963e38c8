"""Optional OpenTelemetry spans: one per call (run, stream, live start) and one per orchestrator attempt.

Installed with the ``otel`` extra (``pip install livepeer-client[otel]``, i.e. ``opentelemetry-api``). Without it
nothing here imports anything: the check is one ``find_spec`` on first use, cached. With it, spans go to whatever
tracer provider the application configured (a no-op one unless it set one up), under the tracer name
``livepeer.client``.

Attribute names follow the OpenTelemetry semantic conventions where one fits — HTTP client spans
(``http.request.method``, ``server.address``, ``server.port``, ``http.response.status_code``, ``error.type``) and
GenAI (``gen_ai.operation.name``, ``gen_ai.request.model``) — and ``livepeer.*`` for what no convention covers
(capability, route, orchestrator, retries, failover reason, cost in wei). URLs are reduced to scheme, host and
port: paths and query strings may carry credentials, and span exporters are logs by another name.
"""

from __future__ import annotations

import contextvars
import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["Attrs", "Handle", "attempt_span", "call_span", "origin", "session_span"]

Attrs = Mapping[str, "str | int | float | bool"]

_tracer: Tracer | None = None
_checked = False


def _get_tracer() -> Tracer | None:
    global _tracer, _checked
    if not _checked:
        _checked = True
        if importlib.util.find_spec("opentelemetry") is not None:
            from opentelemetry import trace

            _tracer = trace.get_tracer("livepeer.client")
    return _tracer


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``: never a path, query or userinfo."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else host


class Handle:
    """What a caller may do to its span without importing OpenTelemetry."""

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.attempts = 0

    def set(self, attrs: Attrs) -> None:
        if self.span is not None:
            self.span.set_attributes(dict(attrs))

    def event(self, name: str, attrs: Attrs | None = None) -> None:
        if self.span is not None:
            self.span.add_event(name, dict(attrs or {}))

    def fail(self, exc: BaseException) -> None:
        if self.span is not None:
            from opentelemetry.trace import Status, StatusCode

            self.span.set_attribute("error.type", type(exc).__name__)
            self.span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))

    def end(self) -> None:
        if self.span is not None:
            self.span.end()
            self.span = None

    @contextmanager
    def current(self) -> Iterator[None]:
        """Make this span the parent of spans started inside the block (attempts of a live start)."""
        if self.span is None:
            yield
            return
        from opentelemetry import trace

        token = _call.set(self)
        try:
            with trace.use_span(self.span, end_on_exit=False):
                yield
        finally:
            _call.reset(token)


# The call span attempts report to (retry count), carried like the OTel context itself.
_call: contextvars.ContextVar[Handle | None] = contextvars.ContextVar(
    "livepeer_call_span", default=None
)


@contextmanager
def _span(name: str, attrs: Attrs) -> Iterator[Handle]:
    tracer = _get_tracer()
    if tracer is None:
        yield Handle(None)
        return
    from opentelemetry.trace import Status, StatusCode

    # The span is made current so that attempt spans (and the application's own spans) nest under it.
    with tracer.start_as_current_span(
        name, attributes=dict(attrs), record_exception=True, set_status_on_exception=False
    ) as span:
        handle = Handle(span)
        try:
            yield handle
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise


@contextmanager
def call_span(verb: str, capability: str, model: str | None) -> Iterator[Handle]:
    """The span of one ``run``/``stream``/``live`` call, named ``livepeer.<verb> <capability>``."""
    attrs: dict[str, str | int | float | bool] = {
        "livepeer.capability": capability,
        "gen_ai.operation.name": verb,
    }
    if model:
        attrs["gen_ai.request.model"] = model
    with _span(f"livepeer.{verb} {capability}", attrs) as handle:
        token = _call.set(handle)
        try:
            yield handle
        finally:
            _call.reset(token)


def session_span(capability: str, model: str | None) -> Handle:
    """A live session's span: opened at start, ended by the session; state changes are its events."""
    tracer = _get_tracer()
    if tracer is None:
        return Handle(None)
    attrs: dict[str, str | int | float | bool] = {
        "livepeer.capability": capability,
        "gen_ai.operation.name": "live",
    }
    if model:
        attrs["gen_ai.request.model"] = model
    return Handle(tracer.start_span(f"livepeer.live {capability}", attributes=attrs))


@contextmanager
def attempt_span(orchestrator: str, route: str) -> Iterator[Handle]:
    """The span of one attempt on one orchestrator (an HTTP client span in OTel terms)."""
    call = _call.get()
    if call is not None:
        call.attempts += 1
        call.set({"livepeer.retries": call.attempts - 1})
    parts = urlsplit(orchestrator)
    attrs: dict[str, str | int | float | bool] = {
        "livepeer.orchestrator": origin(orchestrator),
        "livepeer.route": route,
        "livepeer.attempt": call.attempts if call is not None else 1,
        "http.request.method": "POST",
        "server.address": parts.hostname or "",
    }
    if parts.port:
        attrs["server.port"] = parts.port
    with _span(f"livepeer.attempt {route}", attrs) as handle:
        yield handle
