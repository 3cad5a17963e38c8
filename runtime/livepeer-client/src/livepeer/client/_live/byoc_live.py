"""BYOC live streams (PROTOCOL.md §7): ``/ai/stream/start|update|stop|payment`` on the orchestrator.

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

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livepeer.client._errors import (
    APIStatusError,
    ConnectionError,
    LivepeerError,
    PaymentError,
    Rejection,
    TimeoutError,
)
from livepeer.client._http import (
    Call,
    Deadline,
    Op,
    Reply,
    adrive,
)
from livepeer.client._live._failover import failed_start
from livepeer.client._live._session import LiveChannels
from livepeer.client._routes import Probe, safe_url
from livepeer.client._routes.byoc import (
    check_payable,
    is_low_balance,
    is_onchain,
    payment_header,
    probe_call,
    read_probe,
    signed_job_header,
)
from livepeer.client._signer import Identity, Signer, needs_payment

if TYPE_CHECKING:
    from livepeer.client._gateway import Gateway

__all__ = ["ByocLiveJob", "ByocStarted", "start_attempt"]

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


def start_attempt(
    signer: Signer,
    ident: Identity,
    probe: Probe,
    *,
    capability: str,
    params: Mapping[str, object],
    stream_id: str,
    request_id: str,
    deadline: Deadline,
) -> Op[ByocStarted | Rejection]:
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
            reply: Reply = yield Call(
                "POST",
                f"{probe.url}/ai/stream/start",
                headers=headers,
                json={"params": dict(params)},
                timeout=deadline.cap(REQUEST_TIMEOUT),
                limit=1 << 20,
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
        return failed_start(reply, probe, request_id)
    try:
        urls = _channel_urls(reply, probe.url)
    except ConnectionError as exc:
        # The stream runs on the orchestrator: stop it before moving on, or it holds capacity.
        yield from _stop_refused(signer, ident, probe, capability, stream_id, deadline)
        return Rejection(probe.url, str(exc))
    probe.balance = _balance(reply) if _balance(reply) is not None else probe.balance
    response: dict[str, object] = {"stream_id": stream_id, **{k: v for k, v in urls.items() if v}}
    return ByocStarted(probe, ident, capability, stream_id, LiveChannels(**urls), response)


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
        yield Call(
            "POST",
            f"{probe.url}/ai/stream/stop",
            headers=headers,
            json={},
            timeout=max(0.5, min(REQUEST_TIMEOUT, deadline.remaining())),
            limit=1 << 20,
        )
    except LivepeerError:
        pass  # it will be swept when its credit or keepalives lapse


class ByocLiveJob:
    """A running BYOC stream: periodic payments, parameter updates, stop."""

    def __init__(self, gw: Gateway, started: ByocStarted) -> None:
        self._gw = gw
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
            self._gw._core.signer, s.ident, s.probe, capability=s.capability,
            stream_id=s.stream_id, request={"stream_id": s.stream_id}, parameters={}, pay=pay,
        )  # fmt: skip
        reply: Reply = yield Call(
            "POST",
            f"{s.probe.url}/ai/stream/{route}",
            headers=headers,
            json=dict(body),
            timeout=REQUEST_TIMEOUT,
            limit=1 << 20,
        )
        balance = _balance(reply)
        if balance is not None:
            s.probe.balance = balance
        return reply

    def _refresh_token(self) -> Op[None]:
        """A fresh ``/process/token``: new ticket params and the orchestrator's view of the balance."""
        s = self._s
        try:
            token: Reply = yield probe_call(s.probe.url, s.capability, s.ident, REQUEST_TIMEOUT)
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
            text = reply.body[:200].decode("utf-8", "replace").strip()
            raise PaymentError(f"{s.probe.url} refused the stream payment ({reply.status}): {text}")
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
        await adrive(self._pay_op(), self._gw._async_io())

    async def update(
        self,
        params: Mapping[str, object],
        send_control: Callable[[Mapping[str, object]], Awaitable[None]],
    ) -> None:
        reply = await adrive(self._paid_control("update", params), self._gw._async_io())
        if reply.status != 200:
            raise APIStatusError(reply.status, reply.body, orchestrator=self.orchestrator)

    async def stop(self) -> None:
        await adrive(self._paid_control("stop", {}), self._gw._async_io())
