"""The dispatcher: one Gateway's shared state (settings, signer, selector, discovery cache, I/O) and the one
select-and-try policy that ``run``, ``stream`` and every live start go through.

Policy (docs/client.md "Failover", docs/reliability.md): discover candidates (cached ``DISCOVERY_TTL``), probe
them in parallel on the capability's routes (``_routes.routes_for``), rank the usable ones (health,
price, latency; ``max_price``), try each in rank order, and after every one failed start another round with
backoff, within one deadline. A route attempt's outcome is a reply or a ``Rejection`` (move on); only errors
another orchestrator cannot fix (a 4xx of the request itself, an exhausted deadline) end the call. The
signer's statuses are handled here once: 480 re-probes the orchestrator and tries again (at most
``MAX_SIGNER_REFRESH`` times), 481 moves on; payments refresh stale tickets in ``Signer.pay_refreshing``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import httpx

from . import _config
from . import _telemetry as telemetry
from ._discovery import Candidate, discover
from ._errors import (
    APIStatusError,
    CapabilityError,
    ConnectionError,
    LivepeerError,
    NoOrchestratorError,
    Rejection,
    SignerPriceError,
    SignerRefreshError,
    TimeoutError,
)
from ._files import FileOutput, read_file_objects
from ._io import AsyncIO, SyncIO, adrive, drive, verified_ssl_context
from ._ops import (
    Call,
    Deadline,
    Flights,
    InfoCall,
    Op,
    Parallel,
    Reply,
    Sleep,
    Wait,
    backoff,
    gather,
    request,
)
from ._orchinfo import OrchInfoClient
from ._route import (
    LiveRequest,
    LiveStart,
    Offering,
    Probe,
    Request,
    Route,
    RouteName,
    failed_reply,
    safe_url,
)
from ._routes import BUILTIN_PIPELINES, ROUTES, check_path, routes_for
from ._routes import ai as ai_route
from ._selection import Selector, rank
from ._signer import Identity, Signer
from ._spend import Spend
from ._transport import PinStore

__all__ = ["Dispatcher"]

log = logging.getLogger("livepeer.client")
T = TypeVar("T")
DISCOVERY_TTL = 60.0
ORCH_HTTP2 = False
MAX_SIGNER_REFRESH = 3
# One size for both pool limits (Dispatcher._limits): every connection the pool may open is kept alive.
POOL_SIZE = 32
# What go-livepeer's GetOrchestrator answers a request signed by another key (server/rpc.go:679-683).
_STALE_IDENTITY = "orchestrator req sig check failed"
# A route's attempt: (identity, ranked probe, deadline) -> its result, or why this orchestrator was skipped.
Attempt = Callable[[Identity, Probe, Deadline], Op[T | Rejection]]

_UNREACHABLE = ("refused", "connect", "unreachable", "name or service", "resolve")
NOTHING_ANSWERED = (
    "is it running and the URL right? For a local network start `livepeer devnet` and use the "
    "token it prints"
)


class Dispatcher:
    """State shared by sync and async calls of one Gateway, and the policy that uses it (thread-safe)."""

    def __init__(
        self,
        settings: _config.Settings,
        spend: Spend,
        http_client: httpx.Client | httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.signer = Signer(settings.signer_url, settings.signer_headers, settings.private_key)
        self.signer.spend = spend
        self.selector = Selector()
        self._candidates: tuple[float, list[Candidate], list[Rejection]] | None = None
        self._lock = threading.Lock()
        self._flights = Flights()
        self._user_client = http_client
        self._sync: SyncIO | None = None
        self._async: AsyncIO | None = None
        self._async_loop: object = None
        # One certificate pin per orchestrator for this Gateway's life, shared by gRPC and HTTPS.
        self._pins = PinStore.from_env()
        self._info = OrchInfoClient(self._pins)
        self._owned: list[httpx.Client | httpx.AsyncClient] = []

    # -- I/O providers --------------------------------------------------------------------------------

    def _limits(self) -> httpx.Limits:
        # Few peers, many requests: a small pool of kept-alive connections beats hundreds of TLS
        # handshakes (measured: 500 concurrent calls on the devnet, 32 connections ~1.5x faster
        # than 256); callers queue for a connection within their own deadline.
        return httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)

    def sync_io(self) -> SyncIO:
        # httpcore's pool comes with the first client, not with `import livepeer.client` (_netbackend).
        from ._netbackend import sync_client

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

    def async_io(self) -> AsyncIO:
        import anyio.lowlevel

        from ._netbackend import async_client

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

    def run(self, op: Op[T]) -> T:
        """Drive ``op`` with blocking I/O."""
        return drive(op, self.sync_io())

    async def arun(self, op: Op[T]) -> T:
        """Drive ``op`` with async I/O (what live jobs use: ``_route.LiveIO``)."""
        return await adrive(op, self.async_io())

    def _service_client(self) -> httpx.Client:
        from ._netbackend import sync_client

        client = sync_client(
            verify=verified_ssl_context(), http2=False, limits=self._limits(), pins=None
        )
        with self._lock:
            self._owned.append(client)
        return client

    def _async_service_client(self) -> httpx.AsyncClient:
        from ._netbackend import async_client

        client = async_client(
            verify=verified_ssl_context(), http2=False, limits=self._limits(), pins=None
        )
        with self._lock:
            self._owned.append(client)
        return client

    def release(self) -> list[httpx.Client | httpx.AsyncClient]:
        """Forget every pool and hand back the clients this dispatcher owns, for the caller to close."""
        with self._lock:
            owned, self._owned = self._owned, []
            self._sync = None
            self._async = None
        self._info.close()
        return owned

    def file_output(self, url: str, orchestrator: str) -> FileOutput:
        """A media URL of a reply, confined to the orchestrator's host, fetched when read."""
        if url.startswith("data:"):
            return FileOutput(url)
        full = safe_url(url, orchestrator)

        def fetch(u: str) -> tuple[bytes, str | None]:
            reply = self.run(_fetch_op(u))
            return reply.body, reply.headers.get("content-type")

        async def afetch(u: str) -> tuple[bytes, str | None]:
            reply = await self.arun(_fetch_op(u))
            return reply.body, reply.headers.get("content-type")

        return FileOutput(full, fetch=fetch, afetch=afetch)

    # -- candidates -----------------------------------------------------------------------------------

    def identity(self) -> Op[Identity]:
        """The signer's identity; a signer that does not answer gets a hint on what to check."""
        try:
            ident: Identity = yield from self.signer.identity()
        except ConnectionError as exc:
            if type(exc) is not ConnectionError:
                raise  # a protocol violation, not an absent signer
            raise ConnectionError(f"{exc} ({NOTHING_ANSWERED})") from None
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

    # -- select and try -------------------------------------------------------------------------------

    def select(
        self,
        capability: str,
        model: str | None,
        attempt: Attempt[T],
        deadline: Deadline,
        *,
        route: RouteName | None = None,
        unprobed: bool = False,
        check_unknown: bool = False,
    ) -> Op[tuple[T, Probe]]:
        """The one select → rank → attempt → fail over loop (``run``, ``stream``, every live start).

        ``unprobed``: with one orchestrator, offchain, no ``max_price`` and a BYOC name, try it before
        probing (nothing to rank, nothing to pay); any failure falls through to probing. ``check_unknown``:
        when every orchestrator answered and none offers the name, raise ``CapabilityError`` with what is
        offered instead of listing rejections.
        """
        started = time.monotonic()
        ident: Identity = yield from self.identity()
        candidates, rejections = yield from self.candidates()
        if not candidates:
            raise NoOrchestratorError(capability, rejections, hint=unreachable_hint(rejections))
        last: dict[str, str] = {}
        sent: Probe | None = None
        first = routes_for(capability, route)[0]
        if (
            unprobed
            and first.probe_free
            and len(candidates) == 1
            and not self.signer.onchain
            and self.settings.max_price is None
            and not self.selector.cached(candidates[0].url, capability, model, route)
        ):
            guess = Probe(candidates[0].url, first.kind, ok=True)
            log.debug(
                "%s: trying %s (%s route, unprobed), attempt 1", capability, guess.url, first.kind
            )
            outcome = yield from self._try(
                guess, ident, deadline, capability, model, route, attempt
            )
            if not isinstance(outcome, Rejection):
                self.selector.store(guess, capability, model, route)
                _log_done(capability, guess, outcome, started, 1)
                return outcome, guess
            log.info("%s: %s failed (%s); probing", capability, guess.url, outcome.reason)
            last[outcome.orchestrator] = outcome.reason
            # That request was this call's first BYOC attempt there: round 0 must not send it again
            # at once (a live-runner app found by the probe is another route, and is tried).
            sent = guess
        attempts = 0
        for rnd in range(self.settings.max_retries + 1):
            if rnd:
                pause = deadline.cap(backoff(rnd - 1))
                log.info(
                    "%s: retry round %d of %d in %.2fs (%s)",
                    capability, rnd, self.settings.max_retries, pause,
                    "; ".join(f"{u}: {r}" for u, r in last.items()) or "no usable orchestrator",
                )  # fmt: skip
                yield Sleep(pause)
                if any(_STALE_IDENTITY in reason for reason in last.values()):
                    # The signer's identity was refused: it may have restarted with another key.
                    self.signer.forget_identity()
                    ident = yield from self.identity()
            # First good answer wins (D-perf-3): the probe round may return while other probes still run
            # (placeholders with `pending`); they are waited for only if every usable answer failed.
            probes = yield from self.selector.probe(
                candidates, capability, model, ident, deadline, retry_failed=rnd > 0, route=route,
                max_price=self.settings.max_price,
            )  # fmt: skip
            tried: set[tuple[str, str]] = set()
            any_usable = False
            while True:
                usable, rejected = rank(probes, self.settings.max_price)
                any_usable = any_usable or bool(usable)
                for r in rejected:
                    last[r.orchestrator] = r.reason
                    log.debug("%s: %s not usable: %s", capability, r.orchestrator, r.reason)
                for probe in usable:
                    if (probe.url, probe.kind) in tried or (
                        rnd == 0 and sent and (probe.url, probe.kind) == (sent.url, sent.kind)
                    ):
                        continue
                    tried.add((probe.url, probe.kind))
                    attempts += 1
                    log.debug(
                        "%s: trying %s (%s route), attempt %d",
                        capability, probe.url, probe.kind, attempts,
                    )  # fmt: skip
                    outcome = yield from self._try(
                        probe, ident, deadline, capability, model, route, attempt
                    )
                    if not isinstance(outcome, Rejection):
                        _log_done(capability, probe, outcome, started, attempts)
                        return outcome, probe
                    last[outcome.orchestrator] = outcome.reason
                    log.info(
                        "%s: failover from %s (%s route): %s",
                        capability, probe.url, probe.kind, outcome.reason,
                    )  # fmt: skip
                    self.selector.mark_failed(probe, capability, model, outcome.reason, route)
                if not any(p.pending for p in probes):
                    break
                probes = yield from self.selector.probe(
                    candidates, capability, model, ident, deadline, route=route,
                    max_price=self.settings.max_price, first_wins=False,
                )  # fmt: skip
            if not any_usable:
                if (
                    check_unknown
                    and rnd == 0
                    and all(p.reachable for p in probes)
                    and not any(p.offers for p in probes)
                ):
                    yield from self._raise_if_unknown(capability, candidates, ident, deadline)
                if all(p.ok for p in probes):
                    break  # every candidate is healthy but over max_price: retrying cannot help
                continue
            if deadline.remaining() <= 0:
                break
        rejections = [Rejection(c.url, last.get(c.url, "not tried")) for c in candidates]
        raise NoOrchestratorError(capability, rejections, hint=unreachable_hint(rejections))

    def _try(
        self,
        probe: Probe,
        ident: Identity,
        deadline: Deadline,
        capability: str,
        model: str | None,
        route: RouteName | None,
        attempt: Attempt[T],
    ) -> Op[T | Rejection]:
        """One orchestrator, inside a span: transport failures and signer 481 move on; signer 480
        re-probes this orchestrator (same route: a refresh must not switch the billing model)."""
        refreshes = 0
        with telemetry.attempt_span(probe.url, probe.kind) as span:
            while True:
                try:
                    outcome = yield from attempt(ident, probe, deadline)
                except (ConnectionError, TimeoutError) as exc:
                    if deadline.remaining() <= 0:
                        raise TimeoutError(f"deadline of {deadline.seconds:g}s exceeded") from None
                    outcome = Rejection(probe.url, str(exc) or type(exc).__name__)
                except SignerPriceError:
                    outcome = Rejection(probe.url, "price above the signer's ceiling (481)")
                except SignerRefreshError:
                    if refreshes == MAX_SIGNER_REFRESH:
                        raise
                    refreshes += 1
                    pinned = route or ROUTES[probe.kind].pin
                    self.selector.forget(probe.url, capability, model, route)
                    self.selector.forget(probe.url, capability, model, pinned)
                    fresh = yield from self.selector.probe(
                        [Candidate(probe.url)], capability, model, ident, deadline, route=pinned
                    )
                    if fresh[0].ok:
                        probe = fresh[0]
                        continue
                    outcome = Rejection(probe.url, fresh[0].reason)
                if isinstance(outcome, Rejection):
                    span.set(
                        {"livepeer.failover.reason": outcome.reason[:200], "error.type": "rejected"}
                    )
                elif isinstance(outcome, Reply):
                    span.set({"http.response.status_code": outcome.status})
                return outcome

    # -- the verbs' attempts --------------------------------------------------------------------------

    def execute(
        self,
        capability: str,
        payload: Mapping[str, object] | None,
        model: str | None,
        timeout: float | None,
        stream: bool,
        route: RouteName | None = None,
        path: str = "",
    ) -> Op[tuple[Reply, Probe, Request]]:
        """``run`` / ``stream``: select, attempt, fail over; the first successful reply.

        The verbs have validated the arguments before any span, scope or I/O.
        """
        check_path(capability, path)
        payload = read_file_objects(payload)  # once: every attempt sends the same bytes
        if capability in BUILTIN_PIPELINES:
            # The Go gateway's defaults (model id included) apply before orchestrators are selected.
            payload, model = ai_route.prepare(capability, payload, model, stream=stream)
        req = Request(
            capability,
            model,
            payload,
            uuid.uuid4().hex,
            Deadline(timeout if timeout is not None else self.settings.timeout),
            stream,
            path,
        )

        def attempt(ident: Identity, probe: Probe, deadline: Deadline) -> Op[Reply | Rejection]:
            return _request(self.signer, ROUTES[probe.kind], ident, probe, req)

        reply, probe = yield from self.select(
            capability, model, attempt, req.deadline, route=route, unprobed=True, check_unknown=True
        )
        return reply, probe, req

    async def start_live(self, live: LiveRequest) -> tuple[LiveStart, str]:
        """``gw.live``: select and start on the capability's routes; the start and the orchestrator."""

        def attempt(ident: Identity, probe: Probe, deadline: Deadline) -> Op[LiveStart | Rejection]:
            return ROUTES[probe.kind].start_live(self, ident, probe, live, deadline)

        started, probe = await self.arun(
            self.select(live.capability, live.model, attempt, Deadline(self.settings.timeout))
        )
        return started, probe.url

    # -- what is offered ------------------------------------------------------------------------------

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

    def list_offerings(self) -> Op[list[Offering]]:
        """``list_capabilities``: every candidate's offer list."""
        ident = yield from self.identity()
        candidates, rejections = yield from self.candidates()
        if not candidates:
            raise NoOrchestratorError("(any)", rejections, hint=unreachable_hint(rejections))
        found: list[Offering] = yield from self.offerings(
            candidates, ident, Deadline(self.settings.timeout)
        )
        return found

    def offerings(
        self, candidates: Sequence[Candidate], ident: Identity, deadline: Deadline
    ) -> Op[list[Offering]]:
        """What the network offers: discovery lists, then each route's own listing of each candidate."""
        out: list[Offering] = []
        for c in candidates:
            for cap in c.capabilities:
                out.append(
                    Offering(cap, c.url, "ai" if cap.split("/")[0] in BUILTIN_PIPELINES else "app")
                )
        timeout = deadline.cap(5.0)
        listings: list[tuple[str, Route]] = []
        calls: list[Call | InfoCall] = []
        for c in candidates:
            for r in ROUTES.values():
                call = r.listing_call(c.url, ident, timeout)
                if call is not None:
                    listings.append((c.url, r))
                    calls.append(call)
        results = yield from gather(Parallel(calls, 8))
        for (url, r), result in zip(listings, results, strict=True):
            if isinstance(result, Reply):
                out.extend(r.offerings(url, result))
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

    async def raise_if_model_unknown(self, capability: str, model: str | None) -> None:
        """CapabilityError listing the offered models when no orchestrator offers ``model``.

        Only a non-empty offer list proves absence; any failure to list leaves the caller's error as is.
        """
        if not model:
            return
        try:
            offers = await self.arun(self.list_offerings())
        except LivepeerError:
            return
        prefix = capability + "/"
        models = {o.capability[len(prefix) :] for o in offers if o.capability.startswith(prefix)}
        if models and model not in models:
            raise CapabilityError(model, sorted(models), what=f"{capability} model")


def _request(
    signer: Signer, route: Route, ident: Identity, probe: Probe, req: Request
) -> Op[Reply | Rejection]:
    """One batch or stream request on one orchestrator: a 2xx reply, a Rejection, or an error that ends
    the call. A route may ask to pay once more (``"repay"``) and resend."""
    repaid = False
    while True:
        reply: Reply = yield from route.attempt(signer, ident, probe, req, force_payment=repaid)
        if reply.status < 300:
            return reply
        verdict = route.classify(reply, probe, req, repaid=repaid)
        if verdict == "repay":
            repaid = True
            continue
        if isinstance(verdict, Rejection):
            return verdict
        return failed_reply(reply, probe, req.request_id)


def _log_done(
    capability: str, probe: Probe, outcome: object, started: float, attempts: int
) -> None:
    done = f"status {outcome.status}" if isinstance(outcome, Reply) else "started"
    log.info(
        "%s: %s via %s route, %s, %.3fs, attempt %d",
        capability, probe.url, probe.kind, done, time.monotonic() - started, attempts,
    )  # fmt: skip


def unreachable_hint(rejections: Sequence[Rejection]) -> str:
    """What to check when nothing answered at all (the usual first-run mistake)."""
    if not rejections or not all(
        any(word in r.reason.lower() for word in _UNREACHABLE) for r in rejections
    ):
        return ""
    where = ", ".join(sorted({r.orchestrator for r in rejections}))
    return f"nothing answered at {where}: {NOTHING_ANSWERED}"


def _fetch_op(url: str) -> Op[Reply]:
    reply = yield from request(Call("GET", url, timeout=60.0))
    if reply.status != 200:
        raise APIStatusError(reply.status, reply.body, orchestrator=url)
    return reply
