"""Built-in AI pipelines: ``POST /{pipeline}`` with ``Livepeer-Payment`` + ``Livepeer-Segment``.

Probing is gRPC ``GetOrchestrator`` with the pipeline/model as requested capability: it yields the price,
the ticket parameters and the auth token that the segment credentials must carry (even offchain). Every
paid request carries tickets (see ``_pay``); bodies are prepared by ``ai_request.prepare``.

Live video-to-video (PROTOCOL.md §1c, §8) is this route's live half: the same probe (TOFU-pinned
``GetOrchestrator`` asking for ``live-video-to-video/{model}``), so it shares candidates, cache, ranking and
``max_price`` with the batch verbs. Start then:

- on-chain (a signer and a priced orchestrator): ``/generate-live-payment`` with ``type: "lv2v"`` and no state
  (the first call prepays 60 s), its ``Livepeer-Payment`` / ``Livepeer-Segment`` on the start request;
- offchain: an empty ``Livepeer-Payment`` and a ``SegData`` carrying only the orchestrator's auth token, which
  the orchestrator still checks (py-1.0 does the same).

While the session runs, every ``PAYMENT_INTERVAL`` seconds: ``/generate-live-payment`` with the signer's state
and ``ManifestID`` = the orchestrator's ``manifest_id``, then ``POST {transcoder}/payment``. Signer 480 →
``GetOrchestrator`` again (fresh ticket params / auth token) and retry with the same state
(``Signer.pay_refreshing``); 481 (price rose above the session's ceiling) and every other failure end the
session with ``PaymentError``; 482 skips the cycle. LV2V has no stop endpoint: closing the publish channel
ends it.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livepeer.client._errors import (
    ConnectionError,
    LivepeerError,
    PaymentError,
    ProtocolError,
    Rejection,
    SignerError,
    SignerPriceError,
    TimeoutError,
)
from livepeer.client._files import FileOutput, replace_urls
from livepeer.client._ops import Call, Deadline, InfoCall, Op, Reply, request
from livepeer.client._replies import check_ai_reply
from livepeer.client._route import (
    BUILTIN_PIPELINES,
    BYOC_CAPABILITY_ID,
    LiveIO,
    LiveRequest,
    LiveStart,
    Offering,
    Probe,
    Request,
    body_fields,
    failed_reply,
    post_tickets,
    safe_url,
)
from livepeer.client._routes.ai_request import billed_units, model_field, prepare
from livepeer.client._signer import Identity, PaymentTokens, Signer

if TYPE_CHECKING:
    from livepeer.client._live._session import LiveChannels

__all__ = [
    "LV2V",
    "ROUTE",
    "Lv2vJob",
    "attempt",
    "capabilities_message",
    "manifest_id",
    "offerings_from_info",
    "prepare",
    "probe_call",
    "read_probe",
]

PROBE_TIMEOUT = 5.0
MAX_SESSIONS = 4096
LV2V = "live-video-to-video"
BILLING = "lv2v"
PAYMENT_INTERVAL = 5.0
START_TIMEOUT = 30.0
PAYMENT_TIMEOUT = 10.0


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
    mid = manifest_id(req.capability, model)
    key = (probe.url, f"ai:{mid}")
    if len(signer.ai_sessions) > MAX_SESSIONS:
        # Bounded memory; a reused session afterwards costs one refused request and a retry on a new chain.
        signer.ai_sessions.clear()

    def fresh() -> Op[bytes]:
        # A new GetOrchestrator answer: fresh ticket parameters (a new recipientRandHash) and auth token.
        reply = yield from request(
            probe_call(probe.url, req.capability, model, ident, req.deadline.cap(PROBE_TIMEOUT))
        )
        signer.ai_sessions.add(_session(reply.body))
        return bytes(reply.body)

    info = signer.chain_info(key)
    if info is None:
        info = probe.info or b""
        if _session(info) in signer.ai_sessions:
            info = yield from fresh()
        signer.ai_sessions.add(_session(info))

    def pay(info: bytes) -> Op[PaymentTokens | None]:
        try:
            tokens, _ = yield from signer.pay_refreshing(
                key, info, fresh, billing=None, manifest_id=mid, in_pixels=units
            )
        except SignerError as exc:
            if exc.status_code in (400, 481):
                signer.forget(key)  # the chain is unusable
            raise
        return tokens

    tokens = yield from pay(info)
    if tokens is None:  # 482 on a chain that must pay: a new chain on fresh ticket parameters
        signer.forget(key)
        tokens = yield from pay((yield from fresh()))
        if tokens is None:
            raise PaymentError("the signer answered 482 (no tickets) for a new state chain")
    return tokens


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
    units = billed_units(req.capability, payload)
    if units is None and paid and req.capability == "audio-to-text":
        # One unit for what the orchestrator bills by the millisecond would overdraw this sender's credit
        # there (DebitFees, ai_http.go:1661), and the next request would be refused "Insufficient balance".
        raise PaymentError(
            f"{probe.url} charges for audio-to-text by its duration, which cannot be measured here for "
            "this audio: install PyAV (pip install 'livepeer-client[live]') or send WAV"
        )
    units = units or 1
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
        reply = yield from request(
            Call(
                "POST",
                f"{base_url(probe)}/{req.capability}",
                headers=headers,
                timeout=req.deadline.cap(req.deadline.remaining()),
                stream=req.stream,
                **body_fields(payload),
            )
        )
        if not (paid and not repay and _repayable(reply)):
            return reply
    return reply


def offerings_from_info(url: str, reply: Reply) -> list[Offering]:
    """Priced rows of a ``GetOrchestrator`` answer: built-in pipelines (and models) and BYOC capabilities."""
    from livepeer.client._proto import lp_rpc_pb2 as pb

    info = pb.OrchestratorInfo()
    try:
        info.ParseFromString(reply.body)
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


# -- live half: live-video-to-video ------------------------------------------------------------------


@dataclass
class Lv2vStarted:
    probe: Probe
    base: str
    info: bytes
    manifest_id: str
    model: str
    response: dict[str, object]
    session_key: tuple[str, str]


def start_live(
    io: LiveIO, ident: Identity, probe: Probe, live: LiveRequest, deadline: Deadline
) -> Op[LiveStart | Rejection]:
    """Start an LV2V job on ``probe``; a refusal drops this session's signer state chain."""
    # One signer state chain per live session (its PMSessionID), never shared between sessions.
    key = (probe.url, f"{LV2V}:{live.stream_id}")
    try:
        outcome = yield from _start(io.signer, probe, live, key, deadline)
    except SignerPriceError:
        io.signer.forget(key)
        raise
    if isinstance(outcome, Rejection):
        io.signer.forget(key)
        return outcome
    channels, started = outcome
    return channels, Lv2vJob(io, started), started.response


def _start(
    signer: Signer, probe: Probe, live: LiveRequest, key: tuple[str, str], deadline: Deadline
) -> Op[tuple[LiveChannels, Lv2vStarted] | Rejection]:
    info = probe.info or b""
    base = base_url(probe)
    headers = {"X-Request-Id": live.request_id}
    if signer.url is not None and probe.price > 0:
        tokens = yield from signer.payment(
            key, info, billing=BILLING, manifest_id=live.stream_id,
            capabilities=capabilities_message(LV2V, live.model),
        )  # fmt: skip
        if tokens is not None:
            headers["Livepeer-Payment"] = tokens.payment
            headers["Livepeer-Segment"] = tokens.seg_creds
    if "Livepeer-Segment" not in headers:
        headers["Livepeer-Payment"] = ""
        headers["Livepeer-Segment"] = _offchain_segment(info, live.stream_id)
    body = {
        "model_id": live.model,
        "params": dict(live.params),
        "gateway_request_id": live.request_id,
        "stream_id": live.stream_id,
    }
    try:
        reply = yield from request(
            Call(
                "POST",
                f"{base}/{LV2V}",
                headers=headers,
                json=body,
                timeout=deadline.cap(START_TIMEOUT),
                limit=1 << 20,
            )
        )
    except (ConnectionError, TimeoutError) as exc:
        return Rejection(probe.url, str(exc))
    if reply.status != 200:
        return failed_reply(reply, probe, live.request_id)
    try:
        data, mid, channels = _started_reply(reply.body, probe.url)
    except (ProtocolError, ConnectionError) as exc:
        # Move on: another orchestrator may start it. LV2V has no stop endpoint: closing the publish
        # channel, when its URL is usable, is how the orchestrator learns the job is over.
        yield from _close_publish(reply.body, probe.url, deadline)
        return Rejection(probe.url, str(exc))
    data.setdefault("stream_id", live.stream_id)
    return channels, Lv2vStarted(probe, base, info, mid, live.model or "", data, key)


def _started_reply(body: bytes, orchestrator: str) -> tuple[dict[str, object], str, LiveChannels]:
    """The start reply: a JSON object whose manifest id and four channel URLs are strings."""
    from livepeer.client._json import loads

    data = loads(body, f"/{LV2V} reply of {orchestrator}")
    names = ("manifest_id", "publish_url", "subscribe_url", "control_url", "events_url")
    if not isinstance(data, dict) or not all(isinstance(data.get(n), str) for n in names):
        raise ProtocolError(
            f"{orchestrator} answered /{LV2V} without the channel URLs and manifest_id"
        )
    from livepeer.client._live._session import LiveChannels  # anyio streams: only when live

    channels = LiveChannels(
        **{n: safe_url(data[n], orchestrator) for n in names[1:]},
    )
    return data, data["manifest_id"], channels


def _close_publish(body: bytes, orchestrator: str, deadline: Deadline) -> Op[None]:
    """Best-effort trickle ``DELETE`` of a refused start's publish channel."""
    from livepeer.client._json import loads

    try:
        data = loads(body, "start reply")
        url = data.get("publish_url") if isinstance(data, dict) else None
        if not isinstance(url, str):
            return
        yield from request(
            Call(
                "DELETE",
                safe_url(url, orchestrator),
                timeout=max(0.5, min(PAYMENT_TIMEOUT, deadline.remaining())),
                limit=1 << 20,
            )
        )
    except LivepeerError:
        pass


class Lv2vJob:
    """The running LV2V job as the session sees it: payments and parameter updates."""

    def __init__(self, io: LiveIO, started: Lv2vStarted) -> None:
        self._io = io
        self._started = started
        self._info = started.info
        priced = io.signer.url is not None and started.probe.price > 0
        self.payment_interval: float | None = PAYMENT_INTERVAL if priced else None
        self.payment_cycles = 0  # every cycle, including those the signer skipped (482)
        self.payments = 0  # cycles that posted tickets to the orchestrator

    @property
    def orchestrator(self) -> str:
        return self._started.probe.url

    async def pay(self) -> None:
        self.payment_cycles += 1
        await self._io.arun(self._pay_op())

    def _pay_op(self) -> Op[None]:
        signer = self._io.signer
        st = self._started

        def fresh() -> Op[bytes]:
            ident: Identity = yield from signer.identity()
            reply = yield from request(
                probe_call(st.probe.url, LV2V, st.model, ident, PAYMENT_TIMEOUT)
            )
            return bytes(reply.body)

        try:
            # The session's capabilities, as the Go gateway sends them on every payment
            # (live_payment.go:222-241): the signer puts them in the segment credentials, and /payment
            # prices the OrchestratorInfo it answers from them (segment_rpc.go:247-258, rpc.go:596-614).
            # Without them it is priced as transcoding (core/orchestrator.go:391-437), which the next
            # payment then refuses: 481 (price above the session's) or 400 (zero price).
            tokens, self._info = yield from signer.pay_refreshing(
                st.session_key, self._info, fresh, billing=BILLING, manifest_id=st.manifest_id,
                capabilities=capabilities_message(LV2V, st.model),
            )  # fmt: skip
        except SignerPriceError:
            raise PaymentError(
                f"{st.probe.url} raised its price above this session's ceiling (481)"
            ) from None
        except SignerError as exc:
            raise PaymentError(f"live payment failed: {exc}") from None
        if tokens is None:
            return  # 482: credit still covers the fee
        reply = yield from post_tickets(
            f"{st.base}/payment", tokens, orchestrator=st.probe.url, what="the payment",
            timeout=PAYMENT_TIMEOUT,
        )  # fmt: skip
        self._info = _payment_info(reply.body) or self._info
        self.payments += 1

    async def update(
        self,
        params: Mapping[str, object],
        send_control: Callable[[Mapping[str, object]], Awaitable[None]],
    ) -> None:
        # go-livepeer's gateway forwards parameter updates to the runner over the control channel.
        await send_control(dict(params))

    async def stop(self) -> None:
        # No LV2V stop endpoint exists (PROTOCOL §8): closing the publish channel ends the job and the
        # orchestrator stops once credit lapses. Only our signer state is dropped.
        self._io.signer.forget(self._started.session_key)


def _payment_info(body: bytes) -> bytes | None:
    """``PaymentResult.info`` (fresh ticket params), if the orchestrator sent one."""
    if not body:
        return None
    from livepeer.client._proto import lp_rpc_pb2 as pb

    result = pb.PaymentResult()
    try:
        result.ParseFromString(body)
    except Exception:  # protobuf raises its own DecodeError type
        return None
    return bytes(result.info.SerializeToString()) if result.HasField("info") else None


class _AiRoute:
    """The ``Route`` of built-in pipelines (``livepeer.client._route.Route``)."""

    kind: str = "ai"
    pin: str | None = None
    probe_free: bool = False
    probe_call = staticmethod(probe_call)
    read_probe = staticmethod(read_probe)
    attempt = staticmethod(attempt)
    start_live = staticmethod(start_live)
    offerings = staticmethod(offerings_from_info)

    @staticmethod
    def classify(
        reply: Reply, probe: Probe, req: Request, *, repaid: bool
    ) -> str | Rejection | None:
        return None  # the batch attempt re-pays lost payments itself (``_repayable``)

    @staticmethod
    def result(
        capability: str, ctype: str, value: object, probe: Probe, media: Callable[[str], FileOutput]
    ) -> object:
        # What go-livepeer's handlers answer per pipeline (_replies); media URLs become FileOutputs.
        check_ai_reply(capability, ctype, value, probe.url)
        return replace_urls(value, media) if value is not None else None

    @staticmethod
    def listing_call(url: str, ident: Identity, timeout: float) -> InfoCall:
        return InfoCall(url, ident.address_bytes(), ident.signature_bytes(), None, timeout)


ROUTE = _AiRoute()
