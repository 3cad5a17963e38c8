"""Built-in AI pipelines: ``POST /{pipeline}`` with ``Livepeer-Payment`` + ``Livepeer-Segment``.

Probing is gRPC ``GetOrchestrator`` with the pipeline/model as requested capability: it yields the price,
the ticket parameters and the auth token that the segment credentials must carry (even offchain). Every
paid request carries tickets (see ``_pay``); bodies are prepared by ``ai_request.prepare``.
"""

from __future__ import annotations

import base64

from livepeer.client._errors import LivepeerError, PaymentError, SignerError
from livepeer.client._http import Call, InfoCall, Op, Reply
from livepeer.client._routes import BUILTIN_PIPELINES, Probe, Request, body_fields, safe_url
from livepeer.client._routes.ai_request import billed_units, model_field, prepare
from livepeer.client._signer import Identity, PaymentTokens, Signer

__all__ = [
    "attempt",
    "capabilities_message",
    "manifest_id",
    "prepare",
    "probe_call",
    "read_probe",
]

PROBE_TIMEOUT = 5.0
MAX_REFRESH = 3
MAX_SESSIONS = 4096


def capabilities_message(pipeline: str, model: str | None) -> bytes:
    """Serialized ``Capabilities`` asking for ``pipeline`` (and ``model``)."""
    from livepeer.client._proto import lp_rpc_pb2 as pb

    cap_id = BUILTIN_PIPELINES[pipeline]
    caps = pb.Capabilities()
    caps.capacities[cap_id] = 1
    per = caps.constraints.PerCapability[cap_id]
    if model:
        per.models[model].SetInParent()
    return bytes(caps.SerializeToString())


def probe_call(
    url: str, pipeline: str, model: str | None, ident: Identity, timeout: float
) -> InfoCall:
    return InfoCall(
        url,
        ident.address_bytes(),
        ident.signature_bytes(),
        capabilities_message(pipeline, model),
        timeout,
    )


def read_probe(url: str, pipeline: str, model: str | None, result: Reply | LivepeerError) -> Probe:
    if isinstance(result, LivepeerError):
        return Probe(url, "ai", ok=False, reason=str(result), reachable=False)
    from livepeer.client._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo()
    try:
        info.ParseFromString(result.body)
    except Exception:  # protobuf raises its own DecodeError type
        return Probe(url, "ai", ok=False, reason="GetOrchestrator returned an undecodable message")
    cap_id = BUILTIN_PIPELINES[pipeline]
    capacity: int | None = None
    per = info.capabilities.constraints.PerCapability
    if cap_id in per and model and model in per[cap_id].models:
        m = per[cap_id].models[model]
        capacity = max(0, m.capacity - m.capacityInUse) if m.capacity else None
    elif (
        info.HasField("capabilities")
        and cap_id not in per
        and cap_id not in info.capabilities.capacities
    ):
        return Probe(
            url,
            "ai",
            ok=False,
            reason=f"does not offer {pipeline}",
            offers=False,
            latency=result.elapsed,
        )
    pi = info.price_info
    price = pi.pricePerUnit / pi.pixelsPerUnit if pi.pixelsPerUnit else float(pi.pricePerUnit)
    ok = capacity is None or capacity > 0
    return Probe(
        url,
        "ai",
        ok=ok,
        reason="" if ok else f"no capacity for {pipeline}/{model}",
        price=price,
        latency=result.elapsed,
        capacity=capacity,
        offers=True,
        info=bytes(result.body),
    )


def _offchain_segment(info_bytes: bytes, manifest_id: str) -> str:
    from livepeer.client._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo()
    info.ParseFromString(info_bytes)
    seg = pb.SegData(manifestId=manifest_id.encode())
    if info.HasField("auth_token"):
        seg.auth_token.CopyFrom(info.auth_token)
    return base64.b64encode(seg.SerializeToString()).decode()


def base_url(probe: Probe) -> str:
    """The ``transcoder`` URL from OrchestratorInfo, if it is on the orchestrator's host."""
    if not probe.info:
        return probe.url
    from livepeer.client._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo()
    info.ParseFromString(probe.info)
    return safe_url(info.transcoder, probe.url).rstrip("/") if info.transcoder else probe.url


def _fresh_info(probe: Probe, req: Request, model: str, ident: Identity) -> Op[bytes]:
    """A new ``GetOrchestrator`` answer: fresh ticket parameters (a new recipientRandHash) and auth token."""
    reply: Reply = yield probe_call(
        probe.url, req.capability, model, ident, req.deadline.cap(PROBE_TIMEOUT)
    )
    return bytes(reply.body)


def _pay(
    signer: Signer, ident: Identity, probe: Probe, req: Request, model: str, units: int
) -> Op[PaymentTokens]:
    """Tickets for one request, from the state chain of (orchestrator, ``{capID}_{modelID}``).

    go-livepeer refuses a request without tickets' sender (``verifySegCreds``, ai_http.go:1388), so a signer
    482 ("no tickets needed": the chain's balance covers one ticket's EV, segment_rpc.go:779-786) cannot be
    skipped as live sessions do. The chain is dropped and a new one started on fresh ticket parameters:
    a new chain restarts sender nonces at 1, which the orchestrator refuses under a recipientRandHash it has
    already seen them for (pm/recipient.go:369-393). Each chain keeps the OrchestratorInfo it started with.
    """
    key = (probe.url, f"ai:{manifest_id(req.capability, model)}")
    if len(signer.ai_sessions) > MAX_SESSIONS:
        # Bounded memory; a reused session afterwards costs one refused request and a retry on a new chain.
        signer.ai_sessions.clear()
    info = signer.chain_info(key)
    if info is None:
        info = probe.info or b""
        if _session(info) in signer.ai_sessions:
            info = yield from _fresh_info(probe, req, model, ident)
        signer.ai_sessions.add(_session(info))
    for refreshes in range(MAX_REFRESH + 1):
        try:
            tokens = yield from signer.payment(
                key, info, billing=None, manifest_id=manifest_id(req.capability, model),
                in_pixels=units,
            )  # fmt: skip
        except SignerError as exc:
            if exc.status_code != 480 or refreshes == MAX_REFRESH:
                if exc.status_code in (400, 481):
                    signer.forget(key)
                raise
            info = yield from _fresh_info(probe, req, model, ident)  # stale auth token or params
            signer.ai_sessions.add(_session(info))
            continue
        if tokens is not None:
            return tokens
        signer.forget(key)
        info = yield from _fresh_info(probe, req, model, ident)
        signer.ai_sessions.add(_session(info))
        fresh = yield from signer.payment(
            key, info, billing=None, manifest_id=manifest_id(req.capability, model),
            in_pixels=units,
        )  # fmt: skip
        if fresh is None:
            raise PaymentError("the signer answered 482 (no tickets) for a new state chain")
        return fresh
    raise PaymentError("the signer kept asking for a refresh (480)")


def _session(info: bytes) -> bytes:
    """The PM session of an OrchestratorInfo: its ticket parameters' recipientRandHash."""
    from livepeer.client._proto import lp_rpc_pb2 as pb

    parsed = pb.OrchestratorInfo()
    parsed.ParseFromString(info)
    return bytes(parsed.ticket_params.recipient_rand_hash)


def manifest_id(pipeline: str, model: str) -> str:
    """go-livepeer's AI credit key, ``"{capID}_{modelID}"`` (ai_http.go:1578)."""
    return f"{BUILTIN_PIPELINES[pipeline]}_{model}"


def _repayable(reply: Reply) -> bool:
    # ai_http.go:1592-1603: a lost or short payment shows as one of these 400s.
    head = reply.body[:200]
    return reply.status == 400 and (
        head.startswith(b"Insufficient balance") or b"invalid ticket senderNonce" in head
    )


def attempt(
    signer: Signer, ident: Identity, probe: Probe, req: Request, *, force_payment: bool
) -> Op[Reply]:
    payload: dict[str, object] = dict(req.input or {})
    model = str(payload.get(model_field(req.capability)) or req.model or "")
    if req.stream and req.capability == "llm":
        payload.setdefault("stream", True)
    paid = probe.price > 0
    if paid and signer.url is None:
        raise PaymentError(
            f"{probe.url} charges for {req.capability}: a signer_url is needed to pay for it"
        )
    units = billed_units(req.capability, payload) or 1
    for repay in (False, True):
        headers = {"X-Request-Id": req.request_id}
        if paid:
            if repay:
                signer.forget((probe.url, f"ai:{manifest_id(req.capability, model)}"))
            tokens = yield from _pay(signer, ident, probe, req, model, units)
            headers["Livepeer-Payment"] = tokens.payment
            headers["Livepeer-Segment"] = tokens.seg_creds
        elif probe.info:
            # Offchain the segment credentials still need the orchestrator's auth token (ai_http.go:1388).
            headers["Livepeer-Segment"] = _offchain_segment(probe.info, req.request_id)
        if req.stream:
            headers["Accept"] = "text/event-stream"
        reply: Reply = yield Call(
            "POST",
            f"{base_url(probe)}/{req.capability}",
            headers=headers,
            timeout=req.deadline.cap(req.deadline.remaining()),
            stream=req.stream,
            **body_fields(payload),
        )
        if not (paid and not repay and _repayable(reply)):
            return reply
    return reply
