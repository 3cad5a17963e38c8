"""``Gateway``: configuration carrier and the verbs ``run`` / ``stream`` (sync and async)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import httpx

from . import _config, limits
from . import _telemetry as telemetry
from ._discovery import Candidate, discover
from ._errors import (
    APIStatusError,
    CapabilityError,
    ConfigError,
    ConnectionError,
    LimitError,
    LivepeerError,
    NoOrchestratorError,
    ProtocolError,
    Rejection,
    SignerError,
    TimeoutError,
    ValidationError,
)
from ._files import FileOutput, replace_urls
from ._http import (
    AsyncIO,
    Call,
    Deadline,
    Flights,
    InfoCall,
    Op,
    Parallel,
    Reply,
    Sleep,
    SyncIO,
    Wait,
    adrive,
    backoff,
    drive,
    is_retryable_status,
    verified_ssl_context,
)
from ._json import loads
from ._orchinfo import OrchInfoClient
from ._redact import headers_secrets, register_secrets, secrets_of_url
from ._replies import check_ai_reply
from ._routes import (
    BUILTIN_PIPELINES,
    BYOC_CAPABILITY_ID,
    Probe,
    Request,
    ai,
    apps,
    byoc,
    check_path,
    safe_url,
)
from ._selection import Selector, rank, route_kind
from ._signer import Identity, Signer
from ._spend import Spend
from ._streaming import AsyncOpenStream, AsyncStreamResponse, OpenStream, StreamResponse
from ._transport import PinStore, async_client, sync_client
from ._validate import check_capability, check_input, check_model, check_seconds

if TYPE_CHECKING:
    from livepeer.capabilities import Capabilities

    from ._live import LiveSession

__all__ = ["Gateway", "Offering", "Route"]

Route = Literal["byoc", "app"]
"""Force a route for a name offered both ways (docs/client.md "Routing"); ``None`` = BYOC first."""

log = logging.getLogger("livepeer.client")
DISCOVERY_TTL = 60.0
ORCH_HTTP2 = False
MAX_SIGNER_REFRESH = 3
_ROUTES = {"ai": ai, "byoc": byoc, "apps": apps}


@dataclass(frozen=True)
class Offering:
    """One capability an orchestrator offers: ``livepeer capabilities`` prints these.

    ``route`` is ``byoc``, ``ai`` (built-in pipeline) or ``app`` (live-runner app); ``price_per_unit`` is in
    wei per ``unit`` (``wei/second``, ``wei/pixel``, ``wei/720p-pixel-second``, ``wei/session``), ``None``
    when the orchestrator did not say; ``capacity`` is free capacity when known.
    """

    capability: str
    orchestrator: str
    route: str
    price_per_unit: float | None = None
    unit: str | None = None
    capacity: int | None = None


# Live-runner price units (PROTOCOL §10) as the table shows them, so every price reads "wei per X".
_APP_UNITS = {
    "seconds": "wei/second",
    "720p-pixel-seconds": "wei/720p-pixel-second",
    "fixed": "wei/session",
}


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


class _Core:
    """State shared by sync and async calls: settings, signer, caches. All policy lives here."""

    def __init__(self, settings: _config.Settings) -> None:
        self.settings = settings
        self.signer = Signer(settings.signer_url, settings.signer_headers, settings.private_key)
        self.selector = Selector()
        self._candidates: tuple[float, list[Candidate], list[Rejection]] | None = None
        self._lock = threading.Lock()
        self._flights = Flights()

    def identity(self) -> Op[Identity]:
        """The signer's identity; a signer that does not answer gets a hint on what to check."""
        try:
            ident: Identity = yield from self.signer.identity()
        except ConnectionError as exc:
            if type(exc) is not ConnectionError:
                raise  # a protocol violation, not an absent signer
            raise ConnectionError(f"{exc} ({_NOTHING_ANSWERED})") from None
        return ident

    def candidates(self) -> Op[tuple[list[Candidate], list[Rejection]]]:
        with self._lock:
            cached = self._candidates
        if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1], cached[2]
        flight = self._flights.join("discovery")
        if flight is not None:
            yield Wait([flight], 10.0)
            with self._lock:
                cached = self._candidates
            if cached is not None:
                return cached[1], cached[2]
            found, rejections = yield from discover(self.settings)
            return found, rejections
        try:
            found, rejections = yield from discover(self.settings)
        finally:
            self._flights.done("discovery")
        if found and rejections:
            # A degraded path: the configured discovery failed and a fallback source answered.
            log.warning("discovery fell back: %s", "; ".join(str(r) for r in rejections))
        if found:
            with self._lock:
                self._candidates = (time.monotonic(), found, rejections)
        return found, rejections

    def execute(
        self,
        capability: str,
        payload: Mapping[str, object] | None,
        model: str | None,
        timeout: float | None,
        stream: bool,
        route: Route | None = None,
        path: str = "",
    ) -> Op[tuple[Reply, Probe, Request]]:
        """Select, attempt, fail over; return the first successful reply.

        The verbs have validated the arguments (``_check_call``) before any span, scope or I/O; a stream
        validates when it is created, not again when it is opened.
        """
        check_path(capability, path)
        if capability in BUILTIN_PIPELINES:
            # The Go gateway's defaults (model id included) apply before orchestrators are selected.
            payload, model = ai.prepare(capability, payload, model)
        started = time.monotonic()
        req = Request(
            capability,
            model,
            payload,
            uuid.uuid4().hex,
            Deadline(timeout if timeout is not None else self.settings.timeout),
            stream,
            path,
        )
        ident: Identity = yield from self.identity()
        candidates, rejections = yield from self.candidates()
        if not candidates:
            raise NoOrchestratorError(capability, rejections, hint=_unreachable_hint(rejections))
        last: dict[str, str] = {}
        if (
            len(candidates) == 1
            and not self.signer.onchain
            and self.settings.max_price is None
            and route_kind(capability) == "byoc"
            and route != "app"
            and not self.selector.cached(candidates[0].url, capability, model, route)
        ):
            # Offchain with one orchestrator there is nothing to rank and nothing to pay: skip the
            # probe round trip. Any failure falls through to the normal probe-and-select path.
            guess = Probe(candidates[0].url, "byoc", ok=True)
            log.debug("%s: trying %s (byoc route, unprobed), attempt 1", capability, guess.url)
            outcome = yield from self._traced_attempt(guess, req, ident, route)
            if isinstance(outcome, Reply):
                self.selector.store(guess, capability, model, route)
                _log_done(req, guess, outcome, started, 1)
                return outcome, guess, req
            log.info("%s: %s failed (%s); probing", capability, guess.url, outcome.reason)
            last[outcome.orchestrator] = outcome.reason
            # That request was this call's first BYOC attempt there: round 0 must not send it again
            # at once (a live-runner app found by the probe is another route, and is tried).
            sent = guess.url
        else:
            sent = None
        attempts = 0
        for rnd in range(self.settings.max_retries + 1):
            if rnd:
                pause = req.deadline.cap(backoff(rnd - 1))
                log.info(
                    "%s: retry round %d of %d in %.2fs (%s)",
                    capability, rnd, self.settings.max_retries, pause,
                    "; ".join(f"{u}: {r}" for u, r in last.items()) or "no usable orchestrator",
                )  # fmt: skip
                yield Sleep(pause)
            probes = yield from self.selector.probe(
                candidates, capability, model, ident, req.deadline, retry_failed=rnd > 0,
                route=route,
            )  # fmt: skip
            usable, rejected = rank(probes, self.settings.max_price)
            for r in rejected:
                last[r.orchestrator] = r.reason
                log.debug("%s: %s not usable: %s", capability, r.orchestrator, r.reason)
            if not usable:
                if (
                    rnd == 0
                    and all(p.reachable for p in probes)
                    and not any(p.offers for p in probes)
                ):
                    yield from self._raise_if_unknown(capability, candidates, ident, req.deadline)
                if all(p.ok for p in probes):
                    break  # every candidate is healthy but over max_price: retrying cannot help
                continue
            for probe in usable:
                if rnd == 0 and probe.url == sent and probe.kind == "byoc":
                    continue
                attempts += 1
                log.debug(
                    "%s: trying %s (%s route), attempt %d",
                    capability, probe.url, probe.kind, attempts,
                )  # fmt: skip
                outcome = yield from self._traced_attempt(probe, req, ident, route)
                if isinstance(outcome, Reply):
                    _log_done(req, probe, outcome, started, attempts)
                    return outcome, probe, req
                last[outcome.orchestrator] = outcome.reason
                log.info(
                    "%s: failover from %s (%s route): %s",
                    capability, probe.url, probe.kind, outcome.reason,
                )  # fmt: skip
                self.selector.mark_failed(probe, capability, model, outcome.reason, route)
        rejections = [Rejection(c.url, last.get(c.url, "not tried")) for c in candidates]
        raise NoOrchestratorError(capability, rejections, hint=_unreachable_hint(rejections))

    def _traced_attempt(
        self, probe: Probe, req: Request, ident: Identity, route: Route | None = None
    ) -> Op[Reply | Rejection]:
        """``_attempt`` inside an OpenTelemetry span (a no-op without the ``otel`` extra)."""
        with telemetry.attempt_span(probe.url, probe.kind) as span:
            outcome = yield from self._attempt(probe, req, ident, route)
            if isinstance(outcome, Rejection):
                span.set(
                    {"livepeer.failover.reason": outcome.reason[:200], "error.type": "rejected"}
                )
            else:
                span.set({"http.response.status_code": outcome.status})
            return outcome

    def _attempt(
        self, probe: Probe, req: Request, ident: Identity, route: Route | None = None
    ) -> Op[Reply | Rejection]:
        repaid = False
        refreshes = 0
        while True:
            handler = _ROUTES[probe.kind]
            try:
                reply: Reply = yield from handler.attempt(
                    self.signer, ident, probe, req, force_payment=repaid
                )
            except (ConnectionError, TimeoutError) as exc:
                if req.deadline.remaining() <= 0:
                    raise TimeoutError(f"deadline of {req.deadline.seconds:g}s exceeded") from None
                return Rejection(probe.url, str(exc) or type(exc).__name__)
            except SignerError as exc:
                if exc.status_code == 480 and refreshes < MAX_SIGNER_REFRESH:
                    # Ticket params or auth token went stale: re-probe this orchestrator, same state.
                    refreshes += 1
                    # The re-probe keeps this attempt's route: it must not switch the billing model.
                    pinned = route or ("app" if probe.kind == "apps" else "byoc")
                    self.selector.forget(probe.url, req.capability, req.model, route)
                    self.selector.forget(probe.url, req.capability, req.model, pinned)
                    fresh = yield from self.selector.probe(
                        [Candidate(probe.url)], req.capability, req.model, ident, req.deadline,
                        route=pinned,
                    )  # fmt: skip
                    if not fresh[0].ok:
                        return Rejection(probe.url, fresh[0].reason)
                    probe = fresh[0]
                    continue
                if exc.status_code == 481:
                    self.signer.forget((probe.url, req.capability))
                    return Rejection(probe.url, "price above the signer's ceiling (481)")
                raise
            if reply.status < 300:
                return reply
            # Only low credit is fixed by paying, and only once; "Could not verify job creds", unknown
            # capabilities and the rest are refusals a payment cannot change (issue 11).
            if (
                probe.kind == "byoc"
                and reply.status == 400
                and b"verify job creds" in reply.body[:300]
            ):
                raise APIStatusError(
                    reply.status,
                    reply.body,
                    orchestrator=probe.url,
                    request_id=req.request_id,
                    hint="this on-chain orchestrator verifies BYOC job signatures made with the payer's "
                    "key: pass private_key= or set LIVEPEER_PRIVATE_KEY (`livepeer devnet --onchain` "
                    'prints one); see docs/client.md "Signer and payments"',
                )
            if probe.kind == "byoc" and byoc.is_low_balance(reply):
                if not repaid and byoc.is_onchain(probe) and probe.price > 0:
                    repaid = True
                    continue
                return Rejection(probe.url, "insufficient balance after re-pay")
            body = reply.body[:200].decode("utf-8", "replace").strip()
            if is_retryable_status(reply.status):
                return Rejection(probe.url, f"HTTP {reply.status}: {body}")
            raise APIStatusError(
                reply.status, reply.body, orchestrator=probe.url, request_id=req.request_id
            )

    def _raise_if_unknown(
        self, capability: str, candidates: Sequence[Candidate], ident: Identity, deadline: Deadline
    ) -> Op[None]:
        offered = yield from self.offerings(candidates, ident, deadline)
        names = {o.capability for o in offered}
        # Only a real offer list proves absence; with nothing discoverable the per-orchestrator
        # rejections (NoOrchestratorError) say more.
        if (
            names
            and capability not in names
            and not any(n.startswith(capability + "/") for n in names)
        ):
            # Suggestions and the list cover every name offered: BYOC, pipeline/model and apps.
            raise CapabilityError(capability, sorted(names))

    def offerings(
        self, candidates: Sequence[Candidate], ident: Identity, deadline: Deadline
    ) -> Op[list[Offering]]:
        """What the network offers: discovery lists, GetOrchestrator prices, /discovery runners."""
        out: list[Offering] = []
        for c in candidates:
            for cap in c.capabilities:
                out.append(
                    Offering(cap, c.url, "ai" if cap.split("/")[0] in BUILTIN_PIPELINES else "app")
                )
        timeout = deadline.cap(5.0)
        calls: list[Call | InfoCall] = []
        for c in candidates:
            calls.append(
                InfoCall(c.url, ident.address_bytes(), ident.signature_bytes(), None, timeout)
            )
            calls.append(apps.probe_call(c.url, timeout))
        results: list[Reply | LivepeerError] = yield Parallel(calls, 8)
        for i, c in enumerate(candidates):
            info, disc = results[2 * i], results[2 * i + 1]
            if isinstance(info, Reply):
                out.extend(_offerings_from_info(c.url, info.body))
            if isinstance(disc, Reply) and disc.status == 200:
                out.extend(_offerings_from_discovery(c.url, disc.body))
        # One row per (name, orchestrator, route); a priced row beats an unpriced duplicate.
        best: dict[tuple[str, str, str], Offering] = {}
        for o in out:
            key = (o.capability, o.orchestrator, o.route)
            have = best.get(key)
            if have is None:
                best[key] = o
            elif have.price_per_unit is None or have.capacity is None:
                best[key] = Offering(
                    o.capability, o.orchestrator, o.route,
                    have.price_per_unit if have.price_per_unit is not None else o.price_per_unit,
                    have.unit or o.unit,
                    have.capacity if have.capacity is not None else o.capacity,
                )  # fmt: skip
        return list(best.values())


def _log_done(req: Request, probe: Probe, reply: Reply, started: float, attempts: int) -> None:
    log.info(
        "%s: %s via %s route, status %d, %.3fs, attempt %d",
        req.capability, probe.url, probe.kind, reply.status, time.monotonic() - started, attempts,
    )  # fmt: skip


_UNREACHABLE = ("refused", "connect", "unreachable", "name or service", "resolve")
_NOTHING_ANSWERED = (
    "is it running and the URL right? For a local network start `livepeer devnet` and use the "
    "token it prints"
)


def _unreachable_hint(rejections: Sequence[Rejection]) -> str:
    """What to check when nothing answered at all (the usual first-run mistake)."""
    if not rejections or not all(
        any(word in r.reason.lower() for word in _UNREACHABLE) for r in rejections
    ):
        return ""
    where = ", ".join(sorted({r.orchestrator for r in rejections}))
    return f"nothing answered at {where}: {_NOTHING_ANSWERED}"


def _offerings_from_discovery(url: str, body: bytes) -> list[Offering]:
    """Live-runner apps from an orchestrator's ``/discovery``; malformed entries are skipped."""
    try:
        data = loads(body, f"/discovery of {url}")
    except ProtocolError:
        return []
    out: list[Offering] = []
    for entry in data if isinstance(data, list) else []:
        runners = entry.get("runners") if isinstance(entry, dict) else None
        for r in runners if isinstance(runners, list) else []:
            if isinstance(r, dict) and isinstance(r.get("app"), str):
                pi = r.get("price_info")
                pi = pi if isinstance(pi, dict) else {}
                price, unit = pi.get("price"), pi.get("unit")
                shown: float | None = None
                if (
                    isinstance(price, (int, float))
                    and not isinstance(price, bool)
                    and math.isfinite(price)
                    and price >= 0
                ):
                    shown = float(price)
                avail = r.get("capacity_available")
                out.append(
                    Offering(
                        r["app"],
                        url,
                        "app",
                        shown,
                        _APP_UNITS.get(unit, unit) if isinstance(unit, str) else None,
                        avail
                        if isinstance(avail, int) and not isinstance(avail, bool) and avail >= 0
                        else None,
                    )
                )
    return out


def _offerings_from_info(url: str, body: bytes) -> list[Offering]:
    from ._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo()
    try:
        info.ParseFromString(body)
    except Exception:  # protobuf's DecodeError
        return []
    names = {v: k for k, v in BUILTIN_PIPELINES.items()}
    out: list[Offering] = []
    for pi in info.capabilities_prices:
        price = pi.pricePerUnit / pi.pixelsPerUnit if pi.pixelsPerUnit else float(pi.pricePerUnit)
        if pi.capability == BYOC_CAPABILITY_ID and pi.constraint:
            out.append(Offering(pi.constraint, url, "byoc", price, "wei/second"))
        elif pi.capability in names:
            cap = names[pi.capability] + (f"/{pi.constraint}" if pi.constraint else "")
            out.append(Offering(cap, url, "ai", price, "wei/pixel"))
    per = info.capabilities.constraints.PerCapability
    for cap_id, constraints in per.items():
        if cap_id in names:
            for model, constraint in constraints.models.items():
                out.append(
                    Offering(
                        f"{names[cap_id]}/{model}",
                        url,
                        "ai",
                        capacity=max(constraint.capacity - constraint.capacityInUse, 0),
                    )
                )
    return out


def _decode(reply: Reply, probe: Probe, gw: Gateway, capability: str) -> object:
    ctype = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = ctype == "application/json" or ctype.endswith("+json")
    if probe.kind == "ai" and not is_json:
        check_ai_reply(capability, ctype, None, probe.url)
    if is_json:
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
        if probe.kind == "ai":
            check_ai_reply(capability, ctype, value, probe.url)
            return replace_urls(value, lambda u: gw._file_output(u, probe.url))
        return value
    if not reply.body:
        return None
    if ctype.startswith("text/"):
        return reply.body.decode("utf-8", "replace")
    return FileOutput(content=reply.body, content_type=ctype or "application/octet-stream")


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
        self._core = _Core(self._settings)
        self._core.signer.spend = spend
        self._user_client = http_client
        self._sync: SyncIO | None = None
        self._async: AsyncIO | None = None
        self._async_loop: object = None
        # One certificate pin per orchestrator for this Gateway's life, shared by gRPC and HTTPS.
        self._pins = PinStore.from_env()
        self._info = OrchInfoClient(self._pins)
        _register_secrets(self._settings)
        self._owned: list[httpx.Client | httpx.AsyncClient] = []
        self._lock = threading.Lock()
        self._capabilities: Capabilities | None = None

    def __repr__(self) -> str:
        return f"Gateway({self._settings!r})"

    @property
    def spend(self) -> Spend:
        """What this Gateway has paid (expected value of tickets, wei) and its budgets: ``gw.spend.summary()``."""
        return self._core.signer.spend

    @property
    def settings(self) -> _config.Settings:
        """The resolved configuration (secrets hidden from ``repr``)."""
        return self._settings

    # -- I/O plumbing -------------------------------------------------------------------------

    def _limits(self) -> httpx.Limits:
        # Few peers, many requests: a small pool of kept-alive connections beats hundreds of TLS
        # handshakes (measured: 500 concurrent calls on the devnet, 32 connections ~1.5x faster
        # than 256); callers queue for a connection within their own deadline.
        return httpx.Limits(max_connections=32, max_keepalive_connections=32)

    def _sync_io(self) -> SyncIO:
        with self._lock:
            if self._sync is None:
                if isinstance(self._user_client, httpx.Client):
                    user = self._user_client
                    self._sync = SyncIO(user, lambda: user, self._info)
                else:
                    # Orchestrators present self-signed certificates (go-livepeer clients skip
                    # verification for REST; gRPC gets TOFU pinning); signer/discovery verify normally.
                    # HTTP/1.1 for REST: orchestrators answer errors before reading the body, which
                    # over HTTP/2 turns into stream resets the client reports as write errors.
                    orch = sync_client(
                        verify=False, http2=ORCH_HTTP2, limits=self._limits(), pins=self._pins
                    )
                    self._owned.append(orch)
                    self._sync = SyncIO(orch, self._service_client, self._info)
            return self._sync

    def _async_io(self) -> AsyncIO:
        import anyio.lowlevel

        # httpx async pools belong to one event loop; a new loop (a second asyncio.run, say, with
        # the module-level default Gateway) gets fresh clients instead of a broken pool.
        loop = anyio.lowlevel.current_token().native_token
        with self._lock:
            if self._async is not None and self._async_loop is not loop:
                stale = [self._async.orch, self._async._service]
                self._owned = [c for c in self._owned if c not in stale]
                self._async = None
            self._async_loop = loop
            if self._async is None:
                if isinstance(self._user_client, httpx.AsyncClient):
                    auser = self._user_client
                    self._async = AsyncIO(auser, lambda: auser, self._info)
                else:
                    orch = async_client(
                        verify=False, http2=ORCH_HTTP2, limits=self._limits(), pins=self._pins
                    )
                    self._owned.append(orch)
                    self._async = AsyncIO(orch, self._async_service_client, self._info)
            return self._async

    def _service_client(self) -> httpx.Client:
        client = sync_client(
            verify=verified_ssl_context(), http2=False, limits=self._limits(), pins=None
        )
        with self._lock:
            self._owned.append(client)
        return client

    def _async_service_client(self) -> httpx.AsyncClient:
        client = async_client(
            verify=verified_ssl_context(), http2=False, limits=self._limits(), pins=None
        )
        with self._lock:
            self._owned.append(client)
        return client

    def _fetch(self, url: str) -> tuple[bytes, str | None]:
        reply = drive(_fetch_op(url), self._sync_io())
        return reply.body, reply.headers.get("content-type")

    async def _afetch(self, url: str) -> tuple[bytes, str | None]:
        reply = await adrive(_fetch_op(url), self._async_io())
        return reply.body, reply.headers.get("content-type")

    def _file_output(self, url: str, orchestrator: str) -> FileOutput:
        if url.startswith("data:"):
            return FileOutput(url)
        full = safe_url(url, orchestrator)
        return FileOutput(full, fetch=self._fetch, afetch=self._afetch)

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
            reply, probe, _ = drive(
                self._core.execute(capability, input, model, timeout, False, route, path),
                self._sync_io(),
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
            reply, probe, _ = await adrive(
                self._core.execute(capability, input, model, timeout, False, route, path),
                self._async_io(),
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
                reply, probe, req = drive(
                    self._core.execute(capability, input, model, timeout, True, route, path),
                    self._sync_io(),
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
                reply, probe, req = await adrive(
                    self._core.execute(capability, input, model, timeout, True, route, path),
                    self._async_io(),
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
        from ._live import open_session

        _check_call(capability, params, model, None, None, "params")
        for value, name in ((request_id, "request_id"), (stream_id, "stream_id")):
            if value is not None:
                check_capability(value, name)

        return open_session(
            self, capability, model=model, params=params, request_id=request_id, stream_id=stream_id
        )

    def list_capabilities(self) -> list[Offering]:
        """What the configured network offers, with prices: ``gw.list_capabilities()``."""
        return drive(self._offerings_op(), self._sync_io())

    async def list_capabilities_async(self) -> list[Offering]:
        """Async twin of ``list_capabilities``."""
        return await adrive(self._offerings_op(), self._async_io())

    def _offerings_op(self) -> Op[list[Offering]]:
        ident = yield from self._core.identity()
        candidates, rejections = yield from self._core.candidates()
        if not candidates:
            raise NoOrchestratorError("(any)", rejections, hint=_unreachable_hint(rejections))
        found: list[Offering] = yield from self._core.offerings(
            candidates, ident, Deadline(self._settings.timeout)
        )
        return found

    async def _raise_if_model_unknown(self, capability: str, model: str | None) -> None:
        """CapabilityError listing the offered models when no orchestrator offers ``model``.

        Only a non-empty offer list proves absence; any failure to list leaves the caller's error as is.
        """
        if not model:
            return
        try:
            offers = await self.list_capabilities_async()
        except LivepeerError:
            return
        prefix = capability + "/"
        models = {o.capability[len(prefix) :] for o in offers if o.capability.startswith(prefix)}
        if models and model not in models:
            raise CapabilityError(model, sorted(models), what=f"{capability} model")

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
        with self._lock:
            owned, self._owned = self._owned, []
            self._sync = None
            self._async = None
        self._info.close()
        for client in owned:
            if isinstance(client, httpx.Client):
                client.close()
            else:
                # An async client closed without a loop: drop its pooled sockets synchronously.
                _close_async_quietly(client)

    async def aclose(self) -> None:
        """Async twin of ``close``."""
        with self._lock:
            owned, self._owned = self._owned, []
            self._sync = None
            self._async = None
        self._info.close()
        for client in owned:
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


def _fetch_op(url: str) -> Op[Reply]:
    reply: Reply = yield Call("GET", url, timeout=60.0)
    if reply.status != 200:
        raise APIStatusError(reply.status, reply.body, orchestrator=url)
    return reply


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
