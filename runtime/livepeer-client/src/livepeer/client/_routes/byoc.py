"""BYOC capabilities: ``GET /process/token``, then ``POST /process/request/`` with a signed job.

Live half, BYOC live streams ``/ai/stream/start|update|stop|payment`` on the orchestrator.

Selection is the BYOC probe (``GET /process/token`` on every candidate, keep those with capacity), shared with
the run verbs. Start sends a signed ``Livepeer`` job header whose ``id`` is the stream id and whose
``parameters`` enable video in, video out and the data channel; the orchestrator answers 200 with an empty body
and the channel URLs in ``X-*-Url`` headers (host-less URLs resolve against the orchestrator; other hosts are
refused). Low credit is 402 here (400 on batch requests): pay once more and retry, then move on.

Payments follow go-livepeer's gateway: every ``PAYMENT_INTERVAL`` seconds a fresh ``/process/token`` and, when
the balance is under the re-pay threshold, tickets on ``POST /ai/stream/payment``. The tickets and every job
header are signed by the local key, the account the orchestrator reads credit from (D-byoc-1). The orchestrator
debits 23 s of price every 23 s and drops the stream on its second negative reading. ``update`` and ``stop``
are sent as the Go gateway sends them: a fresh token and tickets when the balance is low (the 60 s rule applies
to every stream route).
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
    APIStatusError,
    ConnectionError,
    LivepeerError,
    PaymentError,
    ProtocolError,
    Rejection,
    TimeoutError,
)
from livepeer.client._ops import Call, Deadline, Op, Reply, request
from livepeer.client._route import (
    LiveIO,
    LiveRequest,
    LiveStart,
    Probe,
    Request,
    RouteDefaults,
    body_fields,
    failed_reply,
    reply_text,
    request_url,
    safe_url,
)
from livepeer.client._signer import (
    PAYMENT_THRESHOLD_SECONDS,
    Identity,
    Signer,
    missing_byoc_key,
    needs_payment,
)

if TYPE_CHECKING:
    from livepeer.client._live._session import LiveChannels

__all__ = [
    "ROUTE",
    "ByocLiveJob",
    "attempt",
    "check_payable",
    "is_low_balance",
    "is_onchain",
    "payment_header",
    "probe_call",
    "read_probe",
    "signed_job_header",
]


# go-livepeer's gateway buys ``timeout_seconds`` of credit (byoc/payment.go createPayment); its orchestrator
# wants 60 s of credit before any call, so short jobs paid that way fail on a fresh balance. We buy at least
# the gateway's own 120 s re-pay threshold, with go's ticket count rule (D-byoc-1).
def seconds_to_buy(timeout_seconds: int) -> int:
    return max(PAYMENT_THRESHOLD_SECONDS, timeout_seconds)


def probe_call(url: str, capability: str, ident: Identity, timeout: float) -> Call:
    return Call(
        "GET",
        url + "/process/token",
        headers={
            "Livepeer-Eth-Address": ident.for_byoc().eth_address_header(),
            "Livepeer-Capability": capability,
        },
        timeout=timeout,
        limit=1 << 20,
    )


def _price(token: dict[str, Any]) -> float:
    price = token.get("price") or {}
    unit = float(price.get("pricePerUnit") or 0)
    pixels = float(price.get("pixelsPerUnit") or 1)
    return unit / pixels if pixels else unit


def _checked_token(body: bytes) -> dict[str, Any]:
    """The JobToken, with every field we read of the right type and range (hostile-orchestrator guard)."""
    from livepeer.client._json import loads

    token = loads(body, "/process/token reply")
    if not isinstance(token, dict):
        raise ProtocolError("/process/token reply is not a JSON object")

    def number(value: object, what: str, *, integer: bool = False) -> None:
        kinds = (int,) if integer else (int, float)
        if (
            isinstance(value, bool)
            or not isinstance(value, kinds)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ProtocolError(f"/process/token has an invalid {what}: {str(value)[:40]!r}")

    number(token.get("available_capacity", 0) or 0, "available_capacity", integer=True)
    if token.get("balance") is not None:
        number(token["balance"], "balance")
    price = token.get("price") or {}
    if not isinstance(price, dict):
        raise ProtocolError("/process/token has an invalid price")
    number(price.get("pricePerUnit") or 0, "pricePerUnit")
    number(price.get("pixelsPerUnit") or 1, "pixelsPerUnit")
    if token.get("ticket_params") is not None and not isinstance(token["ticket_params"], dict):
        raise ProtocolError("/process/token has invalid ticket_params")
    if token.get("service_addr") is not None and not isinstance(token["service_addr"], str):
        raise ProtocolError("/process/token has an invalid service_addr")
    return token


def read_probe(url: str, capability: str, result: Reply | LivepeerError) -> Probe:
    """Interpret a ``/process/token`` answer."""
    if isinstance(result, LivepeerError):
        return Probe(url, "byoc", ok=False, reason=str(result), reachable=False)
    if result.status != 200:
        body = result.body[:200].decode("utf-8", "replace").strip()
        return Probe(
            url,
            "byoc",
            ok=False,
            reason=f"/process/token answered {result.status}: {body}",
            latency=result.elapsed,
        )
    try:
        token = _checked_token(result.body)
        if token.get("service_addr"):
            safe_url(token["service_addr"], url)  # refused here, before anything is paid or sent
    except (ProtocolError, ConnectionError) as exc:
        return Probe(url, "byoc", ok=False, reason=str(exc), latency=result.elapsed)
    capacity = int(token.get("available_capacity") or 0)
    balance = token.get("balance")
    probe = Probe(
        url,
        "byoc",
        ok=capacity > 0,
        reason="" if capacity > 0 else f"no capacity for {capability!r} (or not offered)",
        price=_price(token),
        latency=result.elapsed,
        capacity=capacity,
        offers=True if capacity > 0 else None,
        token=token,
        balance=float(balance) if isinstance(balance, (int, float)) else 0.0,
    )
    return probe


def service_url(probe: Probe) -> str:
    """Where everything after the token goes: the JobToken's ``service_addr``, as go-livepeer's gateway
    sends jobs, stream calls, payments and token refreshes to ``orchToken.ServiceAddr``
    (byoc/job_gateway.go:197, byoc/stream_gateway.go:298, 411). An orchestrator's ``-serviceAddr`` may differ
    from the address it was discovered at; one on another host was refused by ``read_probe``. The probed
    URL stays the orchestrator's identity (selection, rejections, spend, payment state)."""
    addr = (probe.token or {}).get("service_addr")
    return safe_url(addr, probe.url).rstrip("/") if isinstance(addr, str) and addr else probe.url


def is_onchain(probe: Probe) -> bool:
    """On-chain orchestrators put ticket params in every JobToken (zero face value at price 0)."""
    return bool(probe.token and probe.token.get("ticket_params"))


def token_price(probe: Probe) -> tuple[int, int]:
    """The JobToken price as go-livepeer sends it (whole wei per ``pixelsPerUnit`` seconds)."""
    price = (probe.token or {}).get("price") or {}
    return int(price.get("pricePerUnit") or 0), int(price.get("pixelsPerUnit") or 1)


def check_payable(signer: Signer, probe: Probe, capability: str) -> None:
    """Before any payment: a priced on-chain capability needs the local key (ConfigError otherwise)."""
    if is_onchain(probe) and probe.price > 0 and not signer.has_local_key:
        raise missing_byoc_key(capability)


def payment_header(signer: Signer, probe: Probe, timeout_seconds: int) -> str | None:
    """Tickets from the probe's JobToken for a priced on-chain capability, else None."""
    if not is_onchain(probe) or probe.price <= 0 or probe.token is None:
        return None
    return signer.byoc_payment(
        probe.token,
        price=token_price(probe),
        seconds=seconds_to_buy(timeout_seconds),
        orchestrator=probe.url,
    )


def signed_job_header(signer: Signer, ident: Identity, probe: Probe, job: dict[str, Any]) -> str:
    """The base64 ``Livepeer`` header for ``job`` (a JobRequest without sender/sig)."""
    job["sender"], job["sig"] = signer.job_signature(
        ident, job, onchain=is_onchain(probe), priced=probe.price > 0
    )
    return base64.b64encode(json.dumps(job).encode()).decode()


def is_low_balance(reply: Reply) -> bool:
    """BYOC reports low credit as 400 ``Insufficient balance`` (402 on stream start)."""
    return reply.status == 402 or (
        reply.status == 400 and b"insufficient balance" in reply.body[:500].lower()
    )


def attempt(
    signer: Signer, ident: Identity, probe: Probe, req: Request, *, force_payment: bool
) -> Op[Reply]:
    """One call to one orchestrator: pay if needed, sign the job, POST the input.

    ``force_payment``: the orchestrator answered "Insufficient balance" (the gateway re-pays once).
    """
    check_payable(signer, probe, req.capability)
    headers: dict[str, str] = {}
    timeout = req.deadline.cap(req.deadline.remaining())
    timeout_seconds = max(1, math.ceil(timeout))
    if force_payment or needs_payment(probe.price, probe.balance):
        payment = payment_header(signer, probe, timeout_seconds)
        if payment is not None:
            headers["Livepeer-Payment"] = payment
    job: dict[str, Any] = {
        "id": req.request_id,
        "request": "{}",
        "parameters": "{}",
        "capability": req.capability,
        "timeout_seconds": timeout_seconds,
    }
    headers["Livepeer"] = signed_job_header(signer, ident, probe, job)
    headers["Livepeer-Capability"] = req.capability
    headers["X-Request-Id"] = req.request_id
    if req.stream:
        headers["Accept"] = "text/event-stream"
    reply = yield from request(
        Call(
            "POST",
            request_url(service_url(probe), req.path),
            headers=headers,
            timeout=timeout,
            stream=req.stream,
            **body_fields(req.input),
        )
    )
    for name in ("Livepeer-Balance", "Livepeer-Payment-Balance"):
        value = reply.headers.get(name.lower())
        if value is not None:
            with contextlib.suppress(ValueError):
                probe.balance = float(value)
                signer.spend._note_credit(probe.url, req.capability, probe.balance)
    return reply


# -- live half: BYOC streams ------------------------------------------------------------------------

PAYMENT_INTERVAL = 50.0
# go-livepeer's gateway signs stream control requests with this timeout.
STREAM_TIMEOUT_SECONDS = 70
REQUEST_TIMEOUT = 30.0
CHANNEL_HEADERS = {
    "publish_url": "x-publish-url",
    "subscribe_url": "x-subscribe-url",
    "control_url": "x-control-url",
    "events_url": "x-events-url",
    "data_url": "x-data-url",
}


def _signed_headers(
    signer: Signer,
    ident: Identity,
    probe: Probe,
    *,
    capability: str,
    stream_id: str,
    request: Mapping[str, object],
    parameters: Mapping[str, object],
    pay: bool,
) -> dict[str, str]:
    """``Livepeer`` job header (+ ``Livepeer-Payment`` when ``pay``) for one stream route call.

    Tickets and job are signed by the same local key, so the credit lands on the account the stream
    draws from (D-byoc-1); ``check_payable`` has refused priced on-chain streams without one.
    """
    headers: dict[str, str] = {}
    if pay:
        payment = payment_header(signer, probe, STREAM_TIMEOUT_SECONDS)
        if payment is not None:
            headers["Livepeer-Payment"] = payment
    job: dict[str, Any] = {
        "id": stream_id,
        "request": json.dumps(dict(request), separators=(",", ":")),
        "parameters": json.dumps(dict(parameters), separators=(",", ":")),
        "capability": capability,
        "timeout_seconds": STREAM_TIMEOUT_SECONDS,
    }
    headers["Livepeer"] = signed_job_header(signer, ident, probe, job)
    headers["Livepeer-Capability"] = capability
    return headers


def _balance(reply: Reply) -> float | None:
    value = reply.headers.get("livepeer-balance")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class ByocStarted:
    probe: Probe
    ident: Identity
    capability: str
    stream_id: str
    channels: LiveChannels
    response: dict[str, object]


def start_live(
    io: LiveIO, ident: Identity, probe: Probe, live: LiveRequest, deadline: Deadline
) -> Op[LiveStart | Rejection]:
    """Start a BYOC stream on ``probe``: a signed job whose ``id`` is the stream id."""
    signer, capability, stream_id, request_id = (
        io.signer,
        live.capability,
        live.stream_id,
        live.request_id,
    )
    parameters = {
        "enable_video_ingress": True,
        "enable_video_egress": True,
        "enable_data_output": True,
    }
    check_payable(signer, probe, capability)
    repaid = False
    while True:
        pay = repaid or needs_payment(probe.price, probe.balance)
        headers = _signed_headers(
            signer, ident, probe, capability=capability, stream_id=stream_id,
            request={}, parameters=parameters, pay=pay,
        )  # fmt: skip
        headers["X-Request-Id"] = request_id
        try:
            reply = yield from request(
                Call(
                    "POST",
                    f"{service_url(probe)}/ai/stream/start",
                    headers=headers,
                    json={"params": dict(live.params)},
                    timeout=deadline.cap(REQUEST_TIMEOUT),
                    limit=1 << 20,
                )
            )
        except (ConnectionError, TimeoutError) as exc:
            return Rejection(probe.url, str(exc))
        # Only low credit (402 here) is fixed by paying, and only once.
        if reply.status == 402 and not repaid and is_onchain(probe) and probe.price > 0:
            repaid = True
            continue
        break
    if reply.status == 402:
        return Rejection(probe.url, "insufficient balance after re-pay")
    if reply.status != 200:
        return failed_reply(reply, probe, request_id)
    try:
        urls = _channel_urls(reply, probe.url)
    except ConnectionError as exc:
        # The stream runs on the orchestrator: stop it before moving on, or it holds capacity.
        yield from _stop_refused(signer, ident, probe, capability, stream_id, deadline)
        return Rejection(probe.url, str(exc))
    probe.balance = _balance(reply) if _balance(reply) is not None else probe.balance
    response: dict[str, object] = {"stream_id": stream_id, **{k: v for k, v in urls.items() if v}}
    from livepeer.client._live._session import LiveChannels  # anyio streams: only when live

    started = ByocStarted(probe, ident, capability, stream_id, LiveChannels(**urls), response)
    return started.channels, ByocLiveJob(io, started), response


def _channel_urls(reply: Reply, orchestrator: str) -> dict[str, str | None]:
    """Channel URLs from the start reply's headers, confined to the orchestrator (``safe_url``)."""
    urls: dict[str, str | None] = {}
    for field, header in CHANNEL_HEADERS.items():
        value = reply.headers.get(header)
        urls[field] = safe_url(value, orchestrator) if value else None
    if not urls["control_url"] or not urls["events_url"]:
        raise ConnectionError(f"{orchestrator} started the stream without control and events URLs")
    return urls


def _stop_refused(
    signer: Signer,
    ident: Identity,
    probe: Probe,
    capability: str,
    stream_id: str,
    deadline: Deadline,
) -> Op[None]:
    """Best-effort ``/ai/stream/stop`` for a stream whose start reply we refused."""
    try:
        headers = _signed_headers(
            signer, ident, probe, capability=capability, stream_id=stream_id,
            request={"stream_id": stream_id}, parameters={}, pay=False,
        )  # fmt: skip
        yield from request(
            Call(
                "POST",
                f"{service_url(probe)}/ai/stream/stop",
                headers=headers,
                json={},
                timeout=max(0.5, min(REQUEST_TIMEOUT, deadline.remaining())),
                limit=1 << 20,
            )
        )
    except LivepeerError:
        pass  # it will be swept when its credit or keepalives lapse


class ByocLiveJob:
    """A running BYOC stream: periodic payments, parameter updates, stop."""

    def __init__(self, io: LiveIO, started: ByocStarted) -> None:
        self._io = io
        self._s = started
        priced = is_onchain(started.probe) and started.probe.price > 0
        self.payment_interval: float | None = PAYMENT_INTERVAL if priced else None
        self.payment_cycles = 0
        self.payments = 0

    @property
    def orchestrator(self) -> str:
        return self._s.probe.url

    def _control_call(self, route: str, body: Mapping[str, object], *, pay: bool) -> Op[Reply]:
        s = self._s
        headers = _signed_headers(
            self._io.signer, s.ident, s.probe, capability=s.capability,
            stream_id=s.stream_id, request={"stream_id": s.stream_id}, parameters={}, pay=pay,
        )  # fmt: skip
        reply = yield from request(
            Call(
                "POST",
                f"{service_url(s.probe)}/ai/stream/{route}",
                headers=headers,
                json=dict(body),
                timeout=REQUEST_TIMEOUT,
                limit=1 << 20,
            )
        )
        balance = _balance(reply)
        if balance is not None:
            s.probe.balance = balance
        return reply

    def _refresh_token(self) -> Op[None]:
        """A fresh ``/process/token``: new ticket params and the orchestrator's view of the balance."""
        s = self._s
        try:
            token = yield from request(
                probe_call(service_url(s.probe), s.capability, s.ident, REQUEST_TIMEOUT)
            )
        except (ConnectionError, TimeoutError):
            return  # keep the last token; the call that follows reports the failure
        fresh = read_probe(s.probe.url, s.capability, token)
        if fresh.token is not None:
            # The probe object stays the one the stream started on.
            s.probe.token, s.probe.price, s.probe.balance = fresh.token, fresh.price, fresh.balance

    def _pay_op(self) -> Op[None]:
        s = self._s
        yield from self._refresh_token()
        if not needs_payment(s.probe.price, s.probe.balance):
            return
        reply = yield from self._control_call("payment", {}, pay=True)
        if reply.status != 200:
            raise PaymentError(
                f"{s.probe.url} refused the stream payment ({reply.status}): {reply_text(reply)}"
            )
        self.payments += 1

    def _paid_control(self, route: str, body: Mapping[str, object]) -> Op[Reply]:
        """Update and stop as go-livepeer's gateway sends them (byoc/stream_gateway.go, ``sendJobToOrch``):
        a fresh token and tickets when the balance is under the re-pay threshold, since every stream route
        needs 60 s of credit; one more payment only if the orchestrator still reports low credit."""
        priced = self.payment_interval is not None
        if priced:
            yield from self._refresh_token()
        pay = priced and needs_payment(self._s.probe.price, self._s.probe.balance)
        reply = yield from self._control_call(route, body, pay=pay)
        if priced and is_low_balance(reply):
            reply = yield from self._control_call(route, body, pay=True)
        return reply

    async def pay(self) -> None:
        self.payment_cycles += 1
        await self._io.arun(self._pay_op())

    async def update(
        self,
        params: Mapping[str, object],
        send_control: Callable[[Mapping[str, object]], Awaitable[None]],
    ) -> None:
        reply = await self._io.arun(self._paid_control("update", params))
        if reply.status != 200:
            raise APIStatusError(reply.status, reply.body, orchestrator=self.orchestrator)

    async def stop(self) -> None:
        await self._io.arun(self._paid_control("stop", {}))


_CREDS_HINT = (
    "this on-chain orchestrator verifies BYOC job signatures made with the payer's key: pass private_key= "
    "or set LIVEPEER_PRIVATE_KEY (`livepeer devnet --onchain` prints one); see docs/client.md "
    '"Signer and payments"'
)


def classify(reply: Reply, probe: Probe, req: Request, *, repaid: bool) -> str | Rejection | None:
    """Only low credit is fixed by paying, and only once; "Could not verify job creds", unknown
    capabilities and the rest are refusals a payment cannot change (issue 11)."""
    if reply.status == 400 and b"verify job creds" in reply.body[:300]:
        raise APIStatusError(
            reply.status, reply.body, orchestrator=probe.url, request_id=req.request_id,
            hint=_CREDS_HINT,
        )  # fmt: skip
    if is_low_balance(reply):
        if not repaid and is_onchain(probe) and probe.price > 0:
            return "repay"
        return Rejection(probe.url, "insufficient balance after re-pay")
    return None


class _ByocRoute(RouteDefaults):
    """The ``Route`` of BYOC capabilities (``livepeer.client._route.Route``)."""

    kind: str = "byoc"
    pin: str | None = "byoc"
    probe_free: bool = True
    attempt = staticmethod(attempt)
    classify = staticmethod(classify)
    start_live = staticmethod(start_live)

    @staticmethod
    def probe_call(
        url: str, capability: str, model: str | None, ident: Identity, timeout: float
    ) -> Call:
        return probe_call(url, capability, ident, timeout)

    @staticmethod
    def read_probe(
        url: str, capability: str, model: str | None, result: Reply | LivepeerError
    ) -> Probe:
        return read_probe(url, capability, result)

    # No listing of its own: BYOC prices are listed by GetOrchestrator (the ai route's listing).


ROUTE = _ByocRoute()
