"""BYOC capabilities: ``GET /process/token``, then ``POST /process/request/`` with a signed job."""

from __future__ import annotations

import base64
import contextlib
import json
import math
from typing import Any

from livepeer.client._errors import LivepeerError, ProtocolError
from livepeer.client._http import Call, Op, Reply
from livepeer.client._routes import Probe, Request, body_fields, request_url
from livepeer.client._signer import (
    PAYMENT_THRESHOLD_SECONDS,
    Identity,
    Signer,
    missing_byoc_key,
    needs_payment,
)

__all__ = [
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
    except ProtocolError as exc:
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
    reply: Reply = yield Call(
        "POST",
        request_url(probe.url, req.path),
        headers=headers,
        timeout=timeout,
        stream=req.stream,
        **body_fields(req.input),
    )
    for name in ("Livepeer-Balance", "Livepeer-Payment-Balance"):
        value = reply.headers.get(name.lower())
        if value is not None:
            with contextlib.suppress(ValueError):
                probe.balance = float(value)
                signer.spend._note_credit(probe.url, req.capability, probe.balance)
    return reply
