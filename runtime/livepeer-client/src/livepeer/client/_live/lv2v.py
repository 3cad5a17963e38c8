"""Live video-to-video (PROTOCOL.md §1c, §8): GetOrchestrator → payment → ``POST /live-video-to-video``.

Selection is the built-in pipeline probe (gRPC ``GetOrchestrator`` asking for ``live-video-to-video/{model}``,
TOFU-pinned), so LV2V shares the run verbs' candidates, cache, ranking and ``max_price`` filter. Start then:

- on-chain (a signer and a priced orchestrator): ``/generate-live-payment`` with ``type: "lv2v"`` and no state
  (the first call prepays 60 s), its ``Livepeer-Payment`` / ``Livepeer-Segment`` on the start request;
- offchain: an empty ``Livepeer-Payment`` and a ``SegData`` carrying only the orchestrator's auth token, which
  the orchestrator still checks (py-1.0 does the same).

While the session runs, every ``PAYMENT_INTERVAL`` seconds: ``/generate-live-payment`` with the signer's state
and ``ManifestID`` = the orchestrator's ``manifest_id``, then ``POST {transcoder}/payment``. Signer 480 →
``GetOrchestrator`` again (fresh ticket params / auth token) and retry with the same state, at most
``MAX_REFRESH`` times; 481 (price rose above the session's ceiling) and every other failure end the session
with ``PaymentError``; 482 skips the cycle. LV2V has no stop endpoint: closing the publish channel ends it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livepeer.client._errors import (
    ConnectionError,
    PaymentError,
    ProtocolError,
    Rejection,
    SignerError,
    TimeoutError,
    ValidationError,
)
from livepeer.client._http import (
    Call,
    Deadline,
    Op,
    Reply,
    adrive,
)
from livepeer.client._live._failover import failed_start, start_with_failover
from livepeer.client._live._session import LiveChannels
from livepeer.client._routes import Probe, safe_url
from livepeer.client._routes.ai import _offchain_segment, base_url, probe_call
from livepeer.client._signer import Identity, Signer

if TYPE_CHECKING:
    from livepeer.client._gateway import Gateway

__all__ = ["CAPABILITY", "Lv2vJob", "start"]

CAPABILITY = "live-video-to-video"
BILLING = "lv2v"
PAYMENT_INTERVAL = 5.0
MAX_REFRESH = 3
START_TIMEOUT = 30.0
PAYMENT_TIMEOUT = 10.0


@dataclass
class _Started:
    probe: Probe
    base: str
    info: bytes
    manifest_id: str
    channels: LiveChannels
    response: dict[str, object]
    session_key: tuple[str, str]


def _start_attempt(
    signer: Signer,
    probe: Probe,
    *,
    model: str,
    params: Mapping[str, object],
    request_id: str,
    stream_id: str,
    session_key: tuple[str, str],
    deadline: Deadline,
) -> Op[_Started | Rejection]:
    info = probe.info or b""
    base = base_url(probe)
    headers = {"X-Request-Id": request_id}
    if signer.url is not None and probe.price > 0:
        try:
            tokens = yield from signer.payment(
                session_key, info, billing=BILLING, manifest_id=stream_id
            )
        except SignerError as exc:
            if exc.status_code == 481:
                return Rejection(probe.url, "price above the signer's ceiling (481)")
            raise
        if tokens is not None:
            headers["Livepeer-Payment"] = tokens.payment
            headers["Livepeer-Segment"] = tokens.seg_creds
    if "Livepeer-Segment" not in headers:
        headers["Livepeer-Payment"] = ""
        headers["Livepeer-Segment"] = _offchain_segment(info, stream_id)
    body = {
        "model_id": model,
        "params": dict(params),
        "gateway_request_id": request_id,
        "stream_id": stream_id,
    }
    try:
        reply: Reply = yield Call(
            "POST",
            f"{base}/{CAPABILITY}",
            headers=headers,
            json=body,
            timeout=deadline.cap(START_TIMEOUT),
            limit=1 << 20,
        )
    except (ConnectionError, TimeoutError) as exc:
        return Rejection(probe.url, str(exc))
    if reply.status != 200:
        return failed_start(reply, probe, request_id)
    try:
        data, mid, channels = _started_reply(reply.body, probe.url)
    except (ProtocolError, ConnectionError) as exc:
        # Move on: another orchestrator may start it. LV2V has no stop endpoint: closing the publish
        # channel, when its URL is usable, is how the orchestrator learns the job is over.
        yield from _close_publish(reply.body, probe.url, deadline)
        return Rejection(probe.url, str(exc))
    data.setdefault("stream_id", stream_id)
    return _Started(probe, base, info, mid, channels, data, session_key)


def _started_reply(body: bytes, orchestrator: str) -> tuple[dict[str, object], str, LiveChannels]:
    """The start reply: a JSON object whose manifest id and four channel URLs are strings."""
    from livepeer.client._json import loads

    data = loads(body, f"/{CAPABILITY} reply of {orchestrator}")
    names = ("manifest_id", "publish_url", "subscribe_url", "control_url", "events_url")
    if not isinstance(data, dict) or not all(isinstance(data.get(n), str) for n in names):
        raise ProtocolError(
            f"{orchestrator} answered /{CAPABILITY} without the channel URLs and manifest_id"
        )
    channels = LiveChannels(
        **{n: safe_url(data[n], orchestrator) for n in names[1:]},
    )
    return data, data["manifest_id"], channels


def _close_publish(body: bytes, orchestrator: str, deadline: Deadline) -> Op[None]:
    """Best-effort trickle ``DELETE`` of a refused start's publish channel."""
    from livepeer.client._errors import LivepeerError
    from livepeer.client._json import loads

    try:
        data = loads(body, "start reply")
        url = data.get("publish_url") if isinstance(data, dict) else None
        if not isinstance(url, str):
            return
        yield Call(
            "DELETE",
            safe_url(url, orchestrator),
            timeout=max(0.5, min(PAYMENT_TIMEOUT, deadline.remaining())),
            limit=1 << 20,
        )
    except LivepeerError:
        pass


def _start_op(
    gw: Gateway,
    model: str,
    params: Mapping[str, object],
    request_id: str,
    stream_id: str,
) -> Op[_Started]:
    signer = gw._core.signer

    def attempt(ident: Identity, probe: Probe, deadline: Deadline) -> Op[_Started | Rejection]:
        # One signer state chain per live session (its PMSessionID), never shared between sessions.
        key = (probe.url, f"{CAPABILITY}:{stream_id}")
        outcome = yield from _start_attempt(
            signer, probe, model=model, params=params, request_id=request_id,
            stream_id=stream_id, session_key=key, deadline=deadline,
        )  # fmt: skip
        if isinstance(outcome, Rejection):
            signer.forget(key)
        return outcome

    return (yield from start_with_failover(gw, CAPABILITY, model, attempt))


class Lv2vJob:
    """The running LV2V job as the session sees it: payments and parameter updates."""

    def __init__(self, gw: Gateway, started: _Started, model: str) -> None:
        self._gw = gw
        self._started = started
        self._model = model
        self._info = started.info
        signer = gw._core.signer
        priced = signer.url is not None and started.probe.price > 0
        self.payment_interval: float | None = PAYMENT_INTERVAL if priced else None
        self.payment_cycles = 0  # every cycle, including those the signer skipped (482)
        self.payments = 0  # cycles that posted tickets to the orchestrator

    @property
    def orchestrator(self) -> str:
        return self._started.probe.url

    async def pay(self) -> None:
        self.payment_cycles += 1
        await adrive(self._pay_op(), self._gw._async_io())

    def _pay_op(self) -> Op[None]:
        signer = self._gw._core.signer
        st = self._started
        refreshes = 0
        while True:
            try:
                tokens = yield from signer.payment(
                    st.session_key, self._info, billing=BILLING, manifest_id=st.manifest_id
                )
            except SignerError as exc:
                if exc.status_code == 480 and refreshes < MAX_REFRESH:
                    refreshes += 1
                    ident: Identity = yield from signer.identity()
                    fresh: Reply = yield probe_call(
                        st.probe.url, CAPABILITY, self._model, ident, PAYMENT_TIMEOUT
                    )
                    self._info = bytes(fresh.body)
                    continue
                if exc.status_code == 481:
                    raise PaymentError(
                        f"{st.probe.url} raised its price above this session's ceiling (481)"
                    ) from None
                raise PaymentError(f"live payment failed: {exc}") from None
            break
        if tokens is None:
            return  # 482: credit still covers the fee
        reply: Reply = yield Call(
            "POST",
            f"{st.base}/payment",
            headers={"Livepeer-Payment": tokens.payment, "Livepeer-Segment": tokens.seg_creds},
            timeout=PAYMENT_TIMEOUT,
            limit=1 << 20,
        )
        if reply.status != 200:
            text = reply.body[:200].decode("utf-8", "replace").strip()
            raise PaymentError(f"{st.probe.url} refused the payment ({reply.status}): {text}")
        self._info = _fresh_info(reply.body) or self._info
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
        self._gw._core.signer.forget(self._started.session_key)


def _fresh_info(body: bytes) -> bytes | None:
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


async def start(
    gw: Gateway,
    *,
    model: str | None,
    params: Mapping[str, object] | None,
    request_id: str | None,
    stream_id: str | None,
) -> tuple[LiveChannels, Lv2vJob, Mapping[str, object]]:
    """Start an LV2V job; the LiveSession calls this from ``__aenter__``."""
    if not model:
        raise ValidationError(f"{CAPABILITY} needs a model (e.g. model='noop')")
    if params is not None and not isinstance(params, Mapping):
        raise ValidationError("params must be a mapping")
    request_id = request_id or uuid.uuid4().hex
    stream_id = stream_id or uuid.uuid4().hex
    started = await adrive(
        _start_op(gw, model, params or {}, request_id, stream_id), gw._async_io()
    )
    return started.channels, Lv2vJob(gw, started, model), started.response
