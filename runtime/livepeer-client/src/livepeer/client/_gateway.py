"""``Gateway``: configuration carrier and the verbs ``run`` / ``stream`` (sync and async)."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from . import _config, limits
from . import _telemetry as telemetry
from ._dispatch import Dispatcher
from ._errors import (
    APIStatusError,
    ConfigError,
    ConnectionError,
    LimitError,
    NoOrchestratorError,
    ProtocolError,
    ValidationError,
)
from ._files import FileOutput
from ._json import loads
from ._ops import Reply
from ._redact import headers_secrets, register_secrets, secrets_of_url
from ._route import LiveRequest, LiveStart, Offering, Probe, Request, RouteName
from ._routes import BUILTIN_PIPELINES, ROUTES, check_path
from ._routes.ai import LV2V
from ._spend import Spend
from ._streaming import AsyncOpenStream, AsyncStreamResponse, OpenStream, StreamResponse
from ._validate import check_capability, check_input, check_model, check_seconds

if TYPE_CHECKING:
    from livepeer.capabilities import Capabilities

    from ._live import LiveSession

__all__ = ["Gateway", "Offering", "Route"]

Route = RouteName
"""Force a route for a name offered both ways (docs/client.md "Routing"); ``None`` = BYOC first."""

log = logging.getLogger("livepeer.client")


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _setup_logging() -> None:
    """``LIVEPEER_LOG=debug|info|warning|error`` logs to stderr; unset or empty leaves logging to the app."""
    level = os.environ.get("LIVEPEER_LOG", "").strip().lower()
    if not level:
        return
    if level not in _LEVELS:
        raise ConfigError(
            f"environment variable LIVEPEER_LOG={level[:20]!r} is not a level; "
            f"use one of {', '.join(_LEVELS)}"
        )
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        # The handler keeps the chosen level even when the logger is lowered (the CLI's progress line).
        handler.setLevel(_LEVELS[level])
        log.addHandler(handler)
    log.setLevel(_LEVELS[level])


def _check_call(
    capability: object,
    input: object,
    model: object,
    timeout: object,
    route: object,
    input_name: str = "input",
) -> None:
    """Per-call arguments, checked when the verb is called (before any I/O, also for lazy streams)."""
    check_capability(capability)
    check_input(input, input_name)
    check_model(model)
    check_seconds(timeout, "timeout", optional=True)
    if route not in (None, "byoc", "app"):
        raise ValidationError(f"route must be None, 'byoc' or 'app', got {route!r}")


def _decode(reply: Reply, probe: Probe, gw: Gateway, capability: str) -> object:
    """A ``run`` reply as the verb returns it: JSON as Python values (after the route's checks), text as
    ``str``, anything else as ``FileOutput``."""
    ctype = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    route = ROUTES[probe.kind]

    def media(url: str) -> FileOutput:
        return gw._dispatch.file_output(url, probe.url)

    if not (ctype == "application/json" or ctype.endswith("+json")):
        route.result(capability, ctype, None, probe, media)  # a route may refuse a non-JSON reply
        if not reply.body:
            return None
        if ctype.startswith("text/"):
            return reply.body.decode("utf-8", "replace")
        return FileOutput(content=reply.body, content_type=ctype or "application/octet-stream")
    if len(reply.body) > limits.MAX_JSON_BYTES:
        raise LimitError(
            f"JSON reply from {probe.url} is over {limits.MAX_JSON_BYTES} bytes "
            "(see livepeer.client.limits)"
        )
    try:
        value = loads(reply.body, f"reply from {probe.url}")
    except LimitError:
        raise
    except ProtocolError:
        raise APIStatusError(reply.status, reply.body, orchestrator=probe.url) from None
    return route.result(capability, ctype, value, probe, media)


class Gateway:
    """Entry point to the network; reuse one across calls (thread-safe, sync and async).

    ``gw = Gateway(token=TOKEN); gw.run("text-reversal", input={"text": "hi"})``

    Every argument is optional; an explicit argument beats the token, which beats the ``LIVEPEER_*``
    environment variables. Wrong types or values raise ``ConfigError`` naming the argument, here, before
    any network I/O; so does a configuration that names no orchestrator source at all.

    Args:
        token: Base64 configuration token (from the dashboard, or the one ``livepeer devnet`` prints);
            default ``$LIVEPEER_TOKEN``. Its fields: orchestrators, signer, signer_headers, discovery,
            discovery_headers.
        signer_url: Remote signer that signs orchestrator requests and pays (``$LIVEPEER_SIGNER_URL``).
        signer_headers: Headers sent to the signer, e.g. ``{"Authorization": "Bearer ..."}`` (never logged).
        discovery_url: URL listing orchestrators (``$LIVEPEER_DISCOVERY_URL``); default: the signer's
            ``/discover-orchestrators``.
        discovery_headers: Headers sent to the discovery URL (never logged).
        orch_url: Orchestrator URL(s) to use instead of discovery: one URL, a comma-separated string or a
            list (``$LIVEPEER_ORCH_URL``). ``host:port`` means ``https://host:port``.
        timeout: Default overall deadline per call in seconds (finite, > 0; default 60).
        max_retries: Extra rounds over all orchestrators after every one failed (0..100; default 2).
        max_price: Highest acceptable price in wei per the capability's unit (finite, >= 0); dearer
            orchestrators are skipped.
        http_client: An ``httpx.Client`` / ``httpx.AsyncClient`` to use for orchestrator calls (left open
            by ``close()``).
        private_key: Hex key (64 digits) that signs on-chain BYOC jobs and the tickets that pay for
            them (``$LIVEPEER_PRIVATE_KEY``; needs the ``local-key`` extra; docs/client.md).
        max_spend: Wei this Gateway may pay in total (expected value of tickets; ``eth()``/``gwei()``
            help); a payment that would cross it is not sent (``BudgetExceededError``; docs/spend.md).
        max_spend_per_call: Wei one ``run``/``stream`` call or one live session may pay.

    ``LIVEPEER_LOG=debug|info|warning|error`` logs calls, retries and failovers to stderr.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        signer_url: str | None = None,
        signer_headers: Mapping[str, str] | None = None,
        discovery_url: str | None = None,
        discovery_headers: Mapping[str, str] | None = None,
        orch_url: str | Sequence[str] | None = None,
        timeout: float = _config.DEFAULT_TIMEOUT,
        max_retries: int = _config.DEFAULT_MAX_RETRIES,
        max_price: float | None = None,
        http_client: httpx.Client | httpx.AsyncClient | None = None,
        private_key: str | None = None,
        max_spend: int | None = None,
        max_spend_per_call: int | None = None,
    ) -> None:
        _setup_logging()
        if http_client is not None and not isinstance(
            http_client, (httpx.Client, httpx.AsyncClient)
        ):
            raise ConfigError(
                f"http_client must be an httpx.Client or httpx.AsyncClient, not {type(http_client).__name__}"
            )
        spend = Spend(max_spend=max_spend, max_spend_per_call=max_spend_per_call)
        self._settings = _config.resolve(
            token=token,
            signer_url=signer_url,
            signer_headers=signer_headers,
            discovery_url=discovery_url,
            discovery_headers=discovery_headers,
            orch_url=orch_url,
            timeout=timeout,
            max_retries=max_retries,
            max_price=max_price,
            private_key=private_key,
        )
        self._dispatch = Dispatcher(self._settings, spend, http_client)
        _register_secrets(self._settings)
        self._capabilities: Capabilities | None = None

    def __repr__(self) -> str:
        return f"Gateway({self._settings!r})"

    @property
    def spend(self) -> Spend:
        """What this Gateway has paid (expected value of tickets, wei) and its budgets: ``gw.spend.summary()``."""
        return self._dispatch.signer.spend

    @property
    def settings(self) -> _config.Settings:
        """The resolved configuration (secrets hidden from ``repr``)."""
        return self._settings

    @contextlib.contextmanager
    def _call_scope(
        self, verb: str, capability: str, model: str | None
    ) -> Iterator[Callable[[Probe], int]]:
        """One call's span and spend scope; ``finish(probe)`` records where it ran and returns its cost."""
        with (
            telemetry.call_span(verb, capability, model) as span,
            self.spend._call(capability, uuid.uuid4().hex) as paid,
        ):

            def finish(probe: Probe) -> int:
                span.set(
                    {
                        "livepeer.orchestrator": telemetry.origin(probe.url),
                        "livepeer.route": probe.kind,
                        "livepeer.cost_wei": paid.spent_wei,
                    }
                )
                return paid.spent_wei

            yield finish

    # -- verbs ----------------------------------------------------------------------------------

    def run(
        self,
        capability: str,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
        route: Route | None = None,
        path: str = "",
    ) -> object:
        """Call a capability and return its decoded result.

        ``gw.run("text-reversal", input={"text": "hello"})``

        Args:
            capability: A BYOC name (``text-reversal``), a built-in pipeline (``text-to-image``) or a
                live-runner app (``pipeline/model``); ``livepeer capabilities`` lists them.
            input: The request body: JSON values, or files (``Path``, ``bytes``, binary file objects) as
                top-level values, which are sent as multipart.
            model: The model to ask for (built-in pipelines: the model id; apps: ``capability/model``).
            timeout: Overall deadline in seconds for every attempt together (default: the Gateway's).
            route: ``"byoc"`` or ``"app"`` to force the route of a name offered both ways; default
                BYOC first (docs/client.md "Routing").
            path: BYOC only: the path under ``/process/request/`` the orchestrator appends to the worker's
                URL, e.g. ``"items/42"`` (default: the worker URL itself).

        Returns JSON as Python values, text as ``str``, media as ``FileOutput``.
        """
        _check_call(capability, input, model, timeout, route)
        with self._call_scope("run", capability, model) as finish:
            reply, probe, _ = self._dispatch.run(
                self._dispatch.execute(capability, input, model, timeout, False, route, path)
            )
            finish(probe)
        return _decode(reply, probe, self, capability)

    async def run_async(
        self,
        capability: str,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
        route: Route | None = None,
        path: str = "",
    ) -> object:
        """Async twin of ``run``: ``await gw.run_async("text-reversal", input={"text": "hi"})``."""
        _check_call(capability, input, model, timeout, route)
        with self._call_scope("run", capability, model) as finish:
            reply, probe, _ = await self._dispatch.arun(
                self._dispatch.execute(capability, input, model, timeout, False, route, path)
            )
            finish(probe)
        return _decode(reply, probe, self, capability)

    def stream(
        self,
        capability: str,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
        route: Route | None = None,
        path: str = "",
    ) -> StreamResponse:
        """Open a server-sent event stream lazily (arguments as for ``run``).

        ``with gw.stream("token-stream", input={"text": "a b"}) as s: [ev.data for ev in s]``
        """
        _check_call(capability, input, model, timeout, route)
        check_path(capability, path)

        def opener() -> OpenStream:
            with self._call_scope("stream", capability, model) as finish:
                reply, probe, req = self._dispatch.run(
                    self._dispatch.execute(capability, input, model, timeout, True, route, path)
                )
                cost = finish(probe)
            opened = _as_open_stream(reply, probe, req)
            opened.cost_wei = cost
            return opened

        return StreamResponse(opener, timeout=timeout or self._settings.timeout)

    def stream_async(
        self,
        capability: str,
        *,
        input: Mapping[str, object] | None = None,
        model: str | None = None,
        timeout: float | None = None,
        route: Route | None = None,
        path: str = "",
    ) -> AsyncStreamResponse:
        """``async with gw.stream_async("token-stream", input={...}) as s: async for ev in s: ...``"""
        _check_call(capability, input, model, timeout, route)
        check_path(capability, path)

        async def opener() -> AsyncOpenStream:
            with self._call_scope("stream", capability, model) as finish:
                reply, probe, req = await self._dispatch.arun(
                    self._dispatch.execute(capability, input, model, timeout, True, route, path)
                )
                cost = finish(probe)
            opened = _as_async_open_stream(reply, probe, req)
            opened.cost_wei = cost
            return opened

        return AsyncStreamResponse(opener, timeout=timeout or self._settings.timeout)

    def live(
        self,
        capability: str,
        *,
        model: str | None = None,
        params: Mapping[str, object] | None = None,
        request_id: str | None = None,
        stream_id: str | None = None,
    ) -> LiveSession:
        """``async with gw.live("live-video-to-video", model="noop") as session: ...`` (async only).

        Entering selects an orchestrator, pays and starts the job; leaving closes every channel, stops
        payments and ends the job, also on error or cancellation. ``params`` are the job's parameters
        (JSON values); ``request_id`` / ``stream_id`` default to fresh random ids.
        """
        from ._live import LiveSession

        _check_call(capability, params, model, None, None, "params")
        for value, name in ((request_id, "request_id"), (stream_id, "stream_id")):
            if value is not None:
                check_capability(value, name)
        if capability == LV2V and not model:
            raise ValidationError(f"{LV2V} needs a model (e.g. model='noop')")
        live = LiveRequest(
            capability, model, dict(params or {}), request_id or uuid.uuid4().hex,
            stream_id or uuid.uuid4().hex,
        )  # fmt: skip
        orchestrator: list[str] = []

        async def start() -> LiveStart:
            try:
                started, url = await self._dispatch.start_live(live)
            except NoOrchestratorError:
                # "503 insufficient capacity" is also what a model nobody offers gets: say which.
                if capability in BUILTIN_PIPELINES:
                    await self._dispatch.raise_if_model_unknown(capability, model)
                raise
            orchestrator.append(url)
            return started

        return LiveSession(
            start,
            capability=capability,
            model=model,
            orchestrator=lambda: orchestrator[-1] if orchestrator else "",
        )

    def list_capabilities(self) -> list[Offering]:
        """What the configured network offers, with prices: ``gw.list_capabilities()``."""
        return self._dispatch.run(self._dispatch.list_offerings())

    async def list_capabilities_async(self) -> list[Offering]:
        """Async twin of ``list_capabilities``."""
        return await self._dispatch.arun(self._dispatch.list_offerings())

    @property
    def capabilities(self) -> Capabilities:
        """Typed wrappers for every known capability (the ``livepeer-capabilities`` distribution)."""
        if self._capabilities is None:
            try:
                from livepeer.capabilities import Capabilities
            except ImportError:
                raise ConfigError(
                    "gw.capabilities needs the livepeer-capabilities distribution: "
                    "pip install livepeer-capabilities"
                ) from None
            self._capabilities = Capabilities(self)
        return self._capabilities

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release connection pools (clients passed as ``http_client`` are left open)."""
        for client in self._dispatch.release():
            if isinstance(client, httpx.Client):
                client.close()
            else:
                # An async client closed without a loop: drop its pooled sockets synchronously.
                _close_async_quietly(client)

    async def aclose(self) -> None:
        """Async twin of ``close``."""
        for client in self._dispatch.release():
            if isinstance(client, httpx.AsyncClient):
                await client.aclose()
            else:
                client.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Gateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _register_secrets(settings: _config.Settings) -> None:
    """Every configured header value and URL credential is scrubbed from all client logs."""
    values = headers_secrets(settings.signer_headers) + headers_secrets(settings.discovery_headers)
    for url in (settings.signer_url, settings.discovery_url, *settings.orchestrators):
        values += secrets_of_url(url)
    if settings.private_key:
        values.append(settings.private_key)
    register_secrets(values)


def _close_async_quietly(client: httpx.AsyncClient) -> None:
    import anyio

    try:
        anyio.run(client.aclose)
    except RuntimeError:
        log.debug("async client left for the garbage collector (closed inside a running loop)")


def _is_sse(headers: Mapping[str, str]) -> bool:
    return "text/event-stream" in headers.get("content-type", "")


def _as_event(body: bytes) -> bytes:
    """Frame a plain (non-SSE) body as one SSE event, so ``stream`` on a batch answer yields it."""
    lines = body.splitlines() or [b""]
    return b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def _one_event(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    body = bytearray()
    for chunk in chunks:
        _grow(body, chunk, url)
    yield _as_event(bytes(body))


async def _one_event_async(chunks: AsyncIterator[bytes], url: str) -> AsyncIterator[bytes]:
    body = bytearray()
    async for chunk in chunks:
        _grow(body, chunk, url)
    yield _as_event(bytes(body))


def _grow(body: bytearray, chunk: bytes, url: str) -> None:
    """A non-SSE answer to ``stream`` is held whole: bounded like a ``run`` result."""
    body += chunk
    if len(body) > limits.MAX_RESULT_BYTES:
        raise LimitError(
            f"reply from {url} is over {limits.MAX_RESULT_BYTES} bytes (see livepeer.client.limits)"
        )


def _as_open_stream(reply: Reply, probe: Probe, req: Request) -> OpenStream:
    stream = reply.stream
    if not isinstance(stream, OpenStream):
        raise ConnectionError(f"{probe.url} did not open a stream")
    if not _is_sse(reply.headers):
        stream.chunks = _one_event(stream.chunks, probe.url)
    stream.orchestrator = probe.url
    stream.request_id = req.request_id
    stream.headers = reply.headers
    return stream


def _as_async_open_stream(reply: Reply, probe: Probe, req: Request) -> AsyncOpenStream:
    stream = reply.stream
    if not isinstance(stream, AsyncOpenStream):
        raise ConnectionError(f"{probe.url} did not open a stream")
    if not _is_sse(reply.headers):
        stream.chunks = _one_event_async(stream.chunks, probe.url)
    stream.orchestrator = probe.url
    stream.request_id = req.request_id
    stream.headers = reply.headers
    return stream
