"""BYOC capabilities: ``GET /process/token``, then ``POST /process/request/`` with a signed job."""

from __future__ import annotations

import base64
import contextlib
import json
import math
from typing import Any

from livepeer.client._errors import LivepeerError
from livepeer.client._http import Call, Op, Reply
from livepeer.client._routes import Probe, Request, body_fields, route_url
from livepeer.client._signer import (
    PAYMENT_THRESHOLD_SECONDS,
    Identity,
    PaymentTokens,
    Signer,
    needs_payment,
)

__all__ = [
    "attempt",
    "is_low_balance",
    "probe_call",
    "read_probe",
    "signed_job_header",
    "synthesize_info",
]


# The master signer has no BYOC billing type. Its legacy per-pixel mode (no ``type``) charges
# ``price x inPixels``; with the JobToken's per-second price, ``inPixels`` = seconds of credit to buy.
# go-livepeer's gateway buys ``timeout_seconds`` worth; we also cover the 120 s re-pay threshold so the
# next calls need no signer round trip.
def seconds_to_buy(price_per_second: float, balance: float | None, timeout: float) -> int:
    """Seconds of credit that bring the balance over the re-pay threshold plus this job's timeout."""
    have = (balance or 0.0) / price_per_second if price_per_second > 0 else 0.0
    want = PAYMENT_THRESHOLD_SECONDS + math.ceil(timeout)
    return max(MIN_CREDIT_SECONDS, math.ceil(want - max(0.0, have)))


MIN_CREDIT_SECONDS = 60


def probe_call(url: str, capability: str, ident: Identity, timeout: float) -> Call:
    return Call(
        "GET",
        url + "/process/token",
        headers={
            "Livepeer-Eth-Address": ident.eth_address_header(),
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
        token = json.loads(result.body)
        if not isinstance(token, dict):
            raise ValueError
    except ValueError:
        return Probe(url, "byoc", ok=False, reason="/process/token returned malformed JSON")
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


def synthesize_info(probe: Probe) -> bytes:
    """An ``OrchestratorInfo`` built from the JobToken (PROTOCOL §6.6; unverified against go-livepeer)."""
    import secrets
    import time

    from livepeer.client._proto import lp_rpc_pb2 as pb

    token = probe.token or {}
    info = pb.OrchestratorInfo(transcoder=str(token.get("service_addr") or probe.url))
    price = token.get("price") or {}
    info.price_info.pricePerUnit = int(price.get("pricePerUnit") or 0)
    info.price_info.pixelsPerUnit = int(price.get("pixelsPerUnit") or 1)
    tp = token.get("ticket_params") or {}
    for name in (
        "recipient",
        "face_value",
        "win_prob",
        "recipient_rand_hash",
        "seed",
        "expiration_block",
    ):
        if tp.get(name):
            setattr(info.ticket_params, name, base64.b64decode(tp[name]))
    ep = tp.get("expiration_params") or {}
    if ep:
        info.ticket_params.expiration_params.creation_round = int(ep.get("creation_round") or 0)
        if ep.get("creation_round_block_hash"):
            info.ticket_params.expiration_params.creation_round_block_hash = base64.b64decode(
                ep["creation_round_block_hash"]
            )
    if tp.get("recipient"):
        info.address = base64.b64decode(tp["recipient"])
    # /process/token carries no auth token but the signer requires one; BYOC never checks it.
    info.auth_token.token = secrets.token_bytes(16)
    info.auth_token.session_id = secrets.token_hex(8)
    info.auth_token.expiration = int(time.time()) + 1800
    return bytes(info.SerializeToString())


def signed_job_header(
    signer: Signer, ident: Identity, probe: Probe, job: dict[str, Any]
) -> Op[str]:
    """The base64 ``Livepeer`` header for ``job`` (a JobRequest without sender/sig), signed as needed."""
    # Offchain orchestrators never check job signatures (their JobToken carries no ticket params);
    # skipping the signature there saves a signer round trip per call.
    onchain_orch = probe.token is None or bool(probe.token.get("ticket_params"))
    signed = (yield from signer.sign_job(job)) if onchain_orch else None
    job["sender"], job["sig"] = signed if signed else (ident.address, "0x")
    return base64.b64encode(json.dumps(job).encode()).decode()


def is_low_balance(reply: Reply) -> bool:
    """BYOC reports low credit as 400 ``Insufficient balance`` (402 on stream start)."""
    return reply.status == 402 or (
        reply.status == 400 and b"insufficient balance" in reply.body[:500].lower()
    )


def attempt(
    signer: Signer, ident: Identity, probe: Probe, req: Request, *, force_payment: bool
) -> Op[Reply]:
    """One call to one orchestrator: pay if needed, sign the job, POST the input."""
    headers: dict[str, str] = {}
    timeout = req.deadline.cap(req.deadline.remaining())
    if probe.price > 0 and (force_payment or needs_payment(probe.price, probe.balance)):
        tokens: PaymentTokens | None = yield from signer.payment(
            (probe.url, req.capability),
            synthesize_info(probe),
            billing=None,
            in_pixels=seconds_to_buy(probe.price, probe.balance, timeout),
        )
        if tokens is not None:
            headers["Livepeer-Payment"] = tokens.payment
            if tokens.seg_creds:
                headers["Livepeer-Segment"] = tokens.seg_creds
    job: dict[str, Any] = {
        "id": req.request_id,
        "request": "{}",
        "parameters": "{}",
        "capability": req.capability,
        "timeout_seconds": max(1, math.ceil(timeout)),
    }
    headers["Livepeer"] = yield from signed_job_header(signer, ident, probe, job)
    headers["Livepeer-Capability"] = req.capability
    headers["X-Request-Id"] = req.request_id
    if req.stream:
        headers["Accept"] = "text/event-stream"
    reply: Reply = yield Call(
        "POST",
        route_url(probe.url, req.route),
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
    return reply
