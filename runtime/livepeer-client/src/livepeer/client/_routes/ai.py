"""Built-in AI pipelines: ``POST /{pipeline}`` with ``Livepeer-Payment`` + ``Livepeer-Segment``.

Probing is gRPC ``GetOrchestrator`` with the pipeline/model as requested capability: it yields the price,
the ticket parameters and the auth token that the segment credentials must carry (even offchain).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from livepeer.client._errors import LivepeerError
from livepeer.client._http import Call, InfoCall, Op, Reply
from livepeer.client._routes import BUILTIN_PIPELINES, Probe, Request, body_fields, safe_url
from livepeer.client._signer import Identity, PaymentTokens, Signer

__all__ = ["attempt", "capabilities_message", "estimate_pixels", "probe_call", "read_probe"]


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


def estimate_pixels(pipeline: str, payload: Mapping[str, object] | None) -> int:
    """Output pixels the orchestrator will charge for (image pipelines); 1 unit otherwise."""
    p = payload or {}
    if pipeline in ("text-to-image", "image-to-image"):
        w, h, n = p.get("width", 1024), p.get("height", 1024), p.get("num_images_per_prompt", 1)
        if isinstance(w, int) and isinstance(h, int) and isinstance(n, int):
            return max(1, w * h * n)
    return 1


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


def attempt(
    signer: Signer, ident: Identity, probe: Probe, req: Request, *, force_payment: bool
) -> Op[Reply]:
    payload: dict[str, object] = dict(req.input or {})
    if req.model and "model_id" not in payload:
        payload["model_id"] = req.model
    if req.stream and req.capability == "llm":
        payload.setdefault("stream", True)
    headers = {"X-Request-Id": req.request_id}
    info = probe.info or b""
    if probe.price > 0 and signer.url is not None:
        tokens: PaymentTokens | None = yield from signer.payment(
            (probe.url, req.capability),
            info,
            billing=None,
            manifest_id=req.request_id,
            in_pixels=estimate_pixels(req.capability, payload),
        )
        if tokens is not None:
            headers["Livepeer-Payment"] = tokens.payment
            headers["Livepeer-Segment"] = tokens.seg_creds
    if "Livepeer-Segment" not in headers and info:
        headers["Livepeer-Segment"] = _offchain_segment(info, req.request_id)
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
    return reply
