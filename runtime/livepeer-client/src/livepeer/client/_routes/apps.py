"""Live-runner apps: ``GET /discovery`` lists runners; calls go through ``/apps/{runner}/…`` with the
402 payment challenge answered by the signer (PROTOCOL §10).

Live half, persistent live-runner app sessions ``/apps/{runner}/session`` with the 402 challenge.

Selection finds the runner through orchestrator (or signer) discovery exactly as ``run`` does; only runners in
``persistent`` mode can hold a session. Start ``POST``s the runner's session URL with ``Livepeer-Payer-Address``;
an on-chain orchestrator answers 402 with a payment challenge (``payment_params`` = an ``OrchestratorInfo``,
``manifest_id``, ``payment_url``), which the signer pays (billing type from the runner's price unit) before the
retry. The session then lives behind ``app_url`` (the orchestrator's reverse proxy to the app: HTTP, SSE,
WebSocket) until ``POST …/{session}/stop``.

Metered runners (``seconds`` or pixel units; fixed-price runners are paid once, by the challenge) are paid
every ``PAYMENT_INTERVAL`` seconds (py-1.0's cadence): ``/generate-live-payment`` with
the session's state and ``ManifestID``, then ``POST payment_url``. Signer 480 → ``POST /refresh-payment`` for a
fresh challenge and retry with the same state (≤3); 481 and other failures end the session with
``PaymentError``; 482 skips the cycle. App sessions carry no trickle channels: use ``session.app_url``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livepeer.client._errors import (
    ConnectionError,
    LivepeerError,
    PaymentError,
    ProtocolError,
    Rejection,
    SignerError,
    SignerPriceError,
    SignerSkipError,
    TimeoutError,
    ValidationError,
)
from livepeer.client._json import loads
from livepeer.client._ops import Call, Deadline, Op, Reply, request
from livepeer.client._route import (
    LiveIO,
    LiveRequest,
    LiveStart,
    Offering,
    Probe,
    Request,
    RouteDefaults,
    body_fields,
    failed_reply,
    post_tickets,
    safe_url,
)
from livepeer.client._signer import ZERO_ADDRESS, Identity, PaymentTokens, Signer

if TYPE_CHECKING:
    pass

__all__ = [
    "ROUTE",
    "AppJob",
    "attempt",
    "find_runner",
    "offerings_from_discovery",
    "probe_call",
    "probe_from_runner",
    "read_probe",
]

# py-1.0 allows this much drift over the discovered price when asking the signer to pay.
PRICE_SLACK = 1.012
_BILLING = {
    "seconds": "live",
    "hour": "live",
    "720p-pixel-seconds": "lv2v",
    "720p": "lv2v",
    "fixed": "fixed",
}


def find_runner(
    runners: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]],
    capability: str,
    model: str | None,
) -> Mapping[str, Any] | None:
    """A runner whose ``app`` is the capability (``pipeline/model`` by convention)."""
    best: Mapping[str, Any] | None = None
    for r in runners:
        app = r.get("app")
        if not isinstance(app, str) or not isinstance(r.get("url"), str):
            continue
        exact = app == capability or (model is not None and app == f"{capability}/{model}")
        prefix = model is None and app.startswith(capability + "/")
        if exact or prefix:
            avail = r.get("capacity_available")
            if best is None or (isinstance(avail, int) and avail > 0):
                best = r
    return best


def names_exactly(runner: Mapping[str, Any], capability: str, model: str | None) -> bool:
    """The caller named this app itself (``pipeline/model``, or the pipeline with ``model=``)."""
    app = runner.get("app")
    return app == capability or (model is not None and app == f"{capability}/{model}")


def probe_call(url: str, timeout: float) -> Call:
    return Call("GET", url + "/discovery", timeout=timeout, limit=1 << 20)


def probe_from_runner(url: str, runner: Mapping[str, Any], latency: float = 0.0) -> Probe:
    avail = runner.get("capacity_available")
    capacity = avail if isinstance(avail, int) else None
    price_info = runner.get("price_info") or {}
    price = price_info.get("price") if isinstance(price_info, dict) else None
    try:
        runner_url = safe_url(str(runner["url"]), url)
    except ConnectionError as exc:
        return Probe(url, "apps", ok=False, reason=str(exc), offers=True)
    ok = capacity is None or capacity > 0
    return Probe(
        url,
        "apps",
        ok=ok,
        reason="" if ok else f"runner {runner.get('app')} has no capacity",
        price=float(price) if isinstance(price, (int, float)) else 0.0,
        latency=latency,
        capacity=capacity,
        offers=True,
        runner={**runner, "url": runner_url},
    )


def read_probe(
    url: str, capability: str, model: str | None, result: Reply | LivepeerError
) -> Probe | None:
    """None when the orchestrator has no runner for the capability."""
    if isinstance(result, LivepeerError) or result.status != 200:
        return None
    try:
        data = json.loads(result.body)
    except ValueError:
        return None
    runners: list[Mapping[str, Any]] = []
    if isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict) and isinstance(entry.get("runners"), list):
                runners.extend(r for r in entry["runners"] if isinstance(r, dict))
    runner = find_runner(runners, capability, model)
    return probe_from_runner(url, runner, result.elapsed) if runner else None


@dataclass(frozen=True)
class PaymentTerms:
    """How the signer is asked to pay a runner: billing type, price ceiling, app label."""

    billing: str
    max_price: Mapping[str, object] | None
    app: str


def payment_terms(runner: Mapping[str, Any], capability: str) -> PaymentTerms:
    """From the runner's discovered ``price_info``: the billing type for its unit and a ceiling of
    ``PRICE_SLACK`` over the discovered price (py-1.0 does the same)."""
    price_info = runner.get("price_info") or {}
    unit = str(price_info.get("unit") or "seconds")
    max_price = None
    if isinstance(price_info.get("price"), (int, float)):
        max_price = {
            "price": float(price_info["price"]) * PRICE_SLACK,
            "currency": "wei",
            "unit": unit if unit in ("seconds", "720p-pixel-seconds", "fixed") else "seconds",
        }
    return PaymentTerms(_BILLING.get(unit, "live"), max_price, str(runner.get("app") or capability))


def chain_key(url: str, capability: str, manifest: str) -> tuple[str, str]:
    """The signer state chain of one challenge's session. Per (orchestrator, app) it was shared: a second
    session or call on the same app started a new chain over the first's, whose next payment then reused
    nonces on its ticket parameters (refused as replays) or was skipped (482) on credit held in the other
    session's account, which the orchestrator debits per manifest (sender, manifest_id)."""
    return (url, f"{capability}:{manifest}")


def _pay_challenge(
    signer: Signer, probe: Probe, req: Request, challenge: Mapping[str, Any]
) -> Op[PaymentTokens]:
    if signer.url is None:
        raise PaymentError(f"{probe.url} requires payment (402) but no signer_url is configured")
    try:
        params = base64.b64decode(str(challenge["payment_params"]))
        manifest = str(challenge["manifest_id"])
    except (KeyError, ValueError):
        raise PaymentError(f"{probe.url} sent a malformed 402 payment challenge") from None
    terms = payment_terms(probe.runner or {}, req.capability)
    key = chain_key(probe.url, req.capability, manifest)
    signer.forget(key)
    try:
        tokens = yield from signer.payment(
            key, params, billing=terms.billing, manifest_id=manifest, app=terms.app,
            max_price=terms.max_price,
        )  # fmt: skip
    except SignerPriceError:
        signer.forget(key)  # the chain is unusable at this price
        raise
    if tokens is None:
        raise SignerSkipError(
            "signer skipped a payment that the orchestrator demanded", status_code=482
        )
    return tokens


def attempt(
    signer: Signer, ident: Identity, probe: Probe, req: Request, *, force_payment: bool
) -> Op[Reply]:
    """Single-shot runners get one proxied call; persistent runners get session → call → stop."""
    runner = probe.runner or {}
    url = str(runner.get("url") or "")
    persistent = runner.get("mode") == "persistent" or url.rstrip("/").endswith("/session")
    headers: dict[str, str] = {"X-Request-Id": req.request_id}
    if ident.address != ZERO_ADDRESS:
        headers["Livepeer-Payer-Address"] = ident.address
    if req.stream:
        headers["Accept"] = "text/event-stream"
    target = url if persistent else url.rstrip("/")
    for paid in (False, True):
        call = Call(
            "POST",
            target,
            headers=headers,
            timeout=req.deadline.cap(req.deadline.remaining()),
            stream=req.stream and not persistent,
            **(body_fields(req.input) if not persistent else {"json": {}}),
        )
        reply = yield from request(call)
        if reply.status != 402 or paid:
            break
        try:
            challenge = json.loads(reply.body)
        except ValueError:
            return reply
        tokens = yield from _pay_challenge(signer, probe, req, challenge)
        headers = {
            **headers,
            "Livepeer-Payment": tokens.payment,
            "Livepeer-Segment": tokens.seg_creds,
        }
    if not persistent or reply.status >= 300:
        return reply
    try:
        session = json.loads(reply.body)
        sid = str(session["session_id"])
        app_url = safe_url(str(session.get("app_url") or f"{url.rstrip('/')}/{sid}/app"), probe.url)
    except (ValueError, KeyError):
        raise ConnectionError(f"{probe.url} returned a malformed session") from None
    stop_url = safe_url(f"{url.rstrip('/')}/{sid}/stop", probe.url)
    try:
        result = yield from request(
            Call(
                "POST",
                app_url.rstrip("/") + "/",
                headers={"X-Request-Id": req.request_id},
                timeout=req.deadline.cap(req.deadline.remaining()),
                stream=req.stream,
                **body_fields(req.input),
            )
        )
    except LivepeerError:
        yield from _stop(stop_url, req)
        raise
    if not req.stream:
        yield from _stop(stop_url, req)
    return result


def _stop(stop_url: str, req: Request) -> Op[None]:
    # A failed stop is harmless (the session expires on its own); the caller's result matters more.
    with contextlib.suppress(LivepeerError):
        yield from request(
            Call("POST", stop_url, headers={"X-Request-Id": req.request_id}, timeout=5.0)
        )


# -- live half: persistent app sessions --------------------------------------------------------------

PAYMENT_INTERVAL = 3.0
REQUEST_TIMEOUT = 30.0


@dataclass
class _Challenge:
    info: bytes
    manifest_id: str
    payment_url: str


@dataclass
class AppStarted:
    probe: Probe
    ident: Identity
    request: Request
    session_url: str
    session_id: str
    challenge: _Challenge | None
    response: dict[str, object]


def _read_challenge(reply: Reply, probe: Probe) -> _Challenge:
    try:
        data = json.loads(reply.body)
        return _Challenge(
            base64.b64decode(str(data["payment_params"])),
            str(data["manifest_id"]),
            safe_url(str(data["payment_url"]), probe.url),
        )
    except (ValueError, KeyError, TypeError):
        raise PaymentError(f"{probe.url} sent a malformed payment challenge") from None


def start_live(
    io: LiveIO, ident: Identity, probe: Probe, live: LiveRequest, deadline: Deadline
) -> Op[LiveStart | Rejection]:
    """Open one persistent session on ``probe``'s runner, paying its 402 challenge when asked."""
    signer = io.signer
    req = Request(live.capability, live.model, None, live.request_id, deadline)
    runner = probe.runner or {}
    url = str(runner.get("url") or "").rstrip("/")
    if runner.get("mode") != "persistent" and not url.endswith("/session"):
        return Rejection(probe.url, "the runner is single-shot; use run() or stream() for it")
    headers = {"X-Request-Id": req.request_id}
    if ident.address != ZERO_ADDRESS:
        headers["Livepeer-Payer-Address"] = ident.address
    challenge: _Challenge | None = None
    for paid in (False, True):
        try:
            reply = yield from request(Call(
                "POST", url, headers=headers, json={},
                timeout=req.deadline.cap(REQUEST_TIMEOUT), limit=1 << 20,
            ))  # fmt: skip
        except (ConnectionError, TimeoutError) as exc:
            return Rejection(probe.url, str(exc))
        if reply.status != 402 or paid:
            break
        challenge = _read_challenge(reply, probe)
        tokens = yield from _pay_challenge(signer, probe, req, json.loads(reply.body))
        headers = {
            **headers,
            "Livepeer-Payment": tokens.payment,
            "Livepeer-Segment": tokens.seg_creds,
        }
    if reply.status != 200:
        return failed_reply(reply, probe, req.request_id)
    try:
        session = json.loads(reply.body)
        sid = str(session["session_id"])
        app_url = safe_url(str(session.get("app_url") or f"{url}/{sid}/app"), probe.url)
    except (ValueError, KeyError, TypeError):
        raise ConnectionError(f"{probe.url} returned a malformed session") from None
    response: dict[str, object] = {"stream_id": sid, "session_id": sid, "app_url": app_url}
    started = AppStarted(probe, ident, req, url, sid, challenge, response)
    from livepeer.client._live._session import LiveChannels  # anyio streams: only when live

    return LiveChannels(), AppJob(io, started), response


class AppJob:
    """A running app session: periodic payments (metered runners) and stop."""

    def __init__(self, io: LiveIO, started: AppStarted) -> None:
        self._io = io
        self._s = started
        self._challenge = started.challenge
        # The chain the start paid on, kept for the session even if a refreshed challenge names another id.
        self._chain = (
            chain_key(started.probe.url, started.request.capability, started.challenge.manifest_id)
            if started.challenge is not None
            else None
        )
        price_info = (started.probe.runner or {}).get("price_info") or {}
        # Fixed-price runners are paid once, by the challenge; only metered units are paid as time passes
        # (the orchestrator answers 409 to session payments for fixed-price runners).
        metered = started.challenge is not None and price_info.get("unit") != "fixed"
        self.payment_interval: float | None = PAYMENT_INTERVAL if metered else None
        self.payment_cycles = 0
        self.payments = 0

    @property
    def orchestrator(self) -> str:
        return self._s.probe.url

    def _pay_op(self) -> Op[None]:
        assert self._challenge is not None
        assert self._chain is not None
        s, signer = self._s, self._io.signer
        terms = payment_terms(s.probe.runner or {}, s.request.capability)

        def fresh() -> Op[bytes]:
            # A new challenge from the orchestrator: fresh ticket parameters for the same session.
            assert self._challenge is not None
            reply = yield from request(
                Call(
                    "POST",
                    f"{s.probe.url}/refresh-payment",
                    json={"sender": s.ident.address, "manifest_id": self._challenge.manifest_id},
                    timeout=REQUEST_TIMEOUT,
                    limit=1 << 20,
                )
            )
            if reply.status != 200:
                raise PaymentError(f"{s.probe.url} refused /refresh-payment ({reply.status})")
            self._challenge = _read_challenge(reply, s.probe)
            return self._challenge.info

        try:
            tokens, _ = yield from signer.pay_refreshing(
                self._chain, self._challenge.info, fresh,
                billing=terms.billing, manifest_id=self._challenge.manifest_id,
                app=terms.app, max_price=terms.max_price,
            )  # fmt: skip
        except SignerError as exc:
            raise PaymentError(f"app session payment failed: {exc}") from None
        if tokens is None:
            return  # 482: credit still covers the fee
        yield from post_tickets(
            self._challenge.payment_url, tokens, orchestrator=s.probe.url,
            what="the session payment", timeout=REQUEST_TIMEOUT,
        )  # fmt: skip
        self.payments += 1

    async def pay(self) -> None:
        self.payment_cycles += 1
        await self._io.arun(self._pay_op())

    async def update(
        self,
        params: Mapping[str, object],
        send_control: Callable[[Mapping[str, object]], Awaitable[None]],
    ) -> None:
        raise ValidationError(
            "live-runner app sessions take parameters through their own API at session.app_url"
        )

    async def stop(self) -> None:
        s = self._s
        call = Call("POST", f"{s.session_url}/{s.session_id}/stop", timeout=10.0)
        if self._chain is not None:
            self._io.signer.forget(self._chain)  # one chain per session: nothing pays on it again
        with contextlib.suppress(LivepeerError):  # the session expires on the orchestrator anyway
            await self._io.arun(_one(call))


def _one(call: Call) -> Op[Reply]:
    reply = yield from request(call)
    return reply


_APP_UNITS = {
    "seconds": "wei/second",
    "720p-pixel-seconds": "wei/720p-pixel-second",
    "fixed": "wei/session",
}  # live-runner price units (PROTOCOL §10) as the table shows them: every price reads "wei per X"


def offerings_from_discovery(url: str, reply: Reply) -> list[Offering]:
    """Live-runner apps from an orchestrator's ``/discovery``; malformed entries are skipped."""
    if reply.status != 200:
        return []
    try:
        data = loads(reply.body, f"/discovery of {url}")
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


class _AppsRoute(RouteDefaults):
    """The ``Route`` of live-runner apps (``livepeer.client._route.Route``)."""

    kind: str = "apps"
    pin: str | None = "app"
    probe_free: bool = False
    attempt = staticmethod(attempt)
    start_live = staticmethod(start_live)
    offerings = staticmethod(offerings_from_discovery)

    @staticmethod
    def probe_call(
        url: str, capability: str, model: str | None, ident: Identity, timeout: float
    ) -> Call:
        return probe_call(url, timeout)

    @staticmethod
    def read_probe(
        url: str, capability: str, model: str | None, result: Reply | LivepeerError
    ) -> Probe:
        return read_probe(url, capability, model, result) or Probe(
            url, "apps", ok=False, reason=f"no live-runner app {capability!r}", offers=False,
            reachable=not isinstance(result, LivepeerError),
        )  # fmt: skip

    @staticmethod
    def listing_call(url: str, ident: Identity, timeout: float) -> Call:
        return probe_call(url, timeout)


ROUTE = _AppsRoute()
