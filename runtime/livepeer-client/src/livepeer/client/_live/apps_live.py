"""Persistent live-runner app sessions (PROTOCOL.md §10): ``/apps/{runner}/session`` with the 402 challenge.

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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livepeer.client._errors import (
    ConnectionError,
    LivepeerError,
    PaymentError,
    Rejection,
    SignerError,
    TimeoutError,
    ValidationError,
)
from livepeer.client._http import Call, Deadline, Op, Reply, adrive
from livepeer.client._live._failover import failed_start
from livepeer.client._live._session import LiveChannels
from livepeer.client._routes import Probe, Request, safe_url
from livepeer.client._routes.apps import _pay_challenge, payment_terms
from livepeer.client._signer import ZERO_ADDRESS, Identity, Signer

if TYPE_CHECKING:
    from livepeer.client._gateway import Gateway

__all__ = ["AppJob", "start_attempt"]

PAYMENT_INTERVAL = 3.0
MAX_REFRESH = 3
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


def start_attempt(
    signer: Signer, ident: Identity, probe: Probe, req: Request
) -> Op[AppStarted | Rejection]:
    """Open one persistent session on ``probe``'s runner, paying its 402 challenge when asked."""
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
            reply: Reply = yield Call(
                "POST", url, headers=headers, json={},
                timeout=req.deadline.cap(REQUEST_TIMEOUT), limit=1 << 20,
            )  # fmt: skip
        except (ConnectionError, TimeoutError) as exc:
            return Rejection(probe.url, str(exc))
        if reply.status != 402 or paid:
            break
        challenge = _read_challenge(reply, probe)
        try:
            tokens = yield from _pay_challenge(signer, probe, req, json.loads(reply.body))
        except SignerError as exc:
            if exc.status_code == 481:
                return Rejection(probe.url, "price above the signer's ceiling (481)")
            raise
        headers = {
            **headers,
            "Livepeer-Payment": tokens.payment,
            "Livepeer-Segment": tokens.seg_creds,
        }
    if reply.status != 200:
        return failed_start(reply, probe, req.request_id)
    try:
        session = json.loads(reply.body)
        sid = str(session["session_id"])
        app_url = safe_url(str(session.get("app_url") or f"{url}/{sid}/app"), probe.url)
    except (ValueError, KeyError, TypeError):
        raise ConnectionError(f"{probe.url} returned a malformed session") from None
    response: dict[str, object] = {"stream_id": sid, "session_id": sid, "app_url": app_url}
    return AppStarted(probe, ident, req, url, sid, challenge, response)


class AppJob:
    """A running app session: periodic payments (metered runners) and stop."""

    def __init__(self, gw: Gateway, started: AppStarted) -> None:
        self._gw = gw
        self._s = started
        self._challenge = started.challenge
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

    def channels(self) -> LiveChannels:
        return LiveChannels()  # the app is reached through app_url, not trickle

    def _pay_op(self) -> Op[None]:
        assert self._challenge is not None
        s, signer = self._s, self._gw._core.signer
        terms = payment_terms(s.probe.runner or {}, s.request.capability)
        refreshes = 0
        while True:
            try:
                tokens = yield from signer.payment(
                    (s.probe.url, s.request.capability), self._challenge.info,
                    billing=terms.billing, manifest_id=self._challenge.manifest_id,
                    app=terms.app, max_price=terms.max_price,
                )  # fmt: skip
            except SignerError as exc:
                if exc.status_code == 480 and refreshes < MAX_REFRESH:
                    refreshes += 1
                    fresh: Reply = yield Call(
                        "POST",
                        f"{s.probe.url}/refresh-payment",
                        json={
                            "sender": s.ident.address,
                            "manifest_id": self._challenge.manifest_id,
                        },
                        timeout=REQUEST_TIMEOUT,
                        limit=1 << 20,
                    )
                    if fresh.status != 200:
                        raise PaymentError(
                            f"{s.probe.url} refused /refresh-payment ({fresh.status})"
                        ) from None
                    self._challenge = _read_challenge(fresh, s.probe)
                    continue
                raise PaymentError(f"app session payment failed: {exc}") from None
            break
        if tokens is None:
            return  # 482: credit still covers the fee
        reply: Reply = yield Call(
            "POST",
            self._challenge.payment_url,
            headers={"Livepeer-Payment": tokens.payment, "Livepeer-Segment": tokens.seg_creds},
            timeout=REQUEST_TIMEOUT,
            limit=1 << 20,
        )
        if reply.status != 200:
            text = reply.body[:200].decode("utf-8", "replace").strip()
            raise PaymentError(
                f"{s.probe.url} refused the session payment ({reply.status}): {text}"
            )
        self.payments += 1

    async def pay(self) -> None:
        self.payment_cycles += 1
        await adrive(self._pay_op(), self._gw._async_io())

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
        with contextlib.suppress(LivepeerError):  # the session expires on the orchestrator anyway
            await adrive(_one(call), self._gw._async_io())


def _one(call: Call) -> Op[Reply]:
    reply: Reply = yield call
    return reply


def new_request(capability: str, model: str | None, request_id: str, deadline: Deadline) -> Request:
    return Request(capability, model, None, request_id, deadline)
