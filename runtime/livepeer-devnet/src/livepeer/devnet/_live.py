"""Orchestrator routes that start work on runners: LV2V (§8), and BYOC live streams (§7).

Each LV2V session gets its own runner (a ``livepeer.runner`` LivePipeline served on a fresh loopback port),
as go-livepeer starts one runner container per stream; BYOC live streams go to the registered worker.
Trickle channels live on the orchestrator under ``/ai/trickle/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from livepeer.devnet._gohttp import ANY_METHOD, Reject, go_error
from livepeer.devnet._keys import recover_hash_signer
from livepeer.devnet._payments import PaymentError, decode_b64_proto
from livepeer.devnet._signer import segment_message

if TYPE_CHECKING:
    from livepeer.devnet._orchestrator import ExternalCapability, Orchestrator
    from livepeer.devnet._wire import pb

__all__ = ["LiveRoutes"]

log = logging.getLogger("livepeer.devnet")

LV2V_PIXELS_PER_SECOND = 1280 * 720 * 30


@dataclass
class LiveSession:
    """One LV2V session (keyed by manifest id) or BYOC stream (keyed by stream id)."""

    id: str
    kind: str  # "lv2v" | "byoc"
    sender: str
    channels: list[str]
    price_per_second: Fraction = Fraction(0)
    runner_url: str = ""
    capability: str = ""
    done: anyio.Event = field(default_factory=anyio.Event)
    last_debit: float = field(default_factory=time.monotonic)
    last_input_seq: int = 0
    negative_readings: int = 0


class LiveRoutes:
    """LV2V, ``/payment`` and ``/ai/stream/*`` of one orchestrator (AI batch routes: ``_ai``)."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self.sessions: dict[str, LiveSession] = {}
        self.task_group: anyio.abc.TaskGroup | None = None
        # go-livepeer: LV2V debits every -livePaymentInterval (5 s); BYOC streams every 23 s.
        self.lv2v_interval = 5.0
        self.stream_interval = 23.0

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/live-video-to-video", self.start_lv2v, methods=["POST"]),
            Route("/payment", self.payment, methods=ANY_METHOD),
            Route("/ai/stream/start", self.stream_start, methods=ANY_METHOD),
            Route("/ai/stream/update", self.stream_update, methods=ANY_METHOD),
            Route("/ai/stream/stop", self.stream_stop, methods=ANY_METHOD),
            Route("/ai/stream/payment", self.stream_payment, methods=ANY_METHOD),
        ]
        return routes

    async def stop_all(self) -> None:
        for session in list(self.sessions.values()):
            await self._end(session)

    # -- payments and credentials -----------------------------------------------------------------------

    def lv2v_price_per_second(self) -> Fraction:
        if not self.orch.options.onchain:
            return Fraction(0)
        ppu, ppx = self.orch.base_price()
        return Fraction(ppu, ppx) * LV2V_PIXELS_PER_SECOND

    def _lv2v_credentials(self, request: Request) -> tuple[pb.Payment, pb.SegData, str]:
        """go-livepeer's header ladder for ``/live-video-to-video`` and ``/payment``: payment (402), then
        segment credentials (403), both as upstream orders them (server/ai_http.go:1052-1062,
        server/segment_rpc.go:287-314 and 401-452 at 176aa415). Returns (payment, segdata, sender).
        """
        from livepeer.devnet._wire import pb

        payment = pb.Payment()
        header = request.headers.get("livepeer-payment", "")
        # An absent or empty header is an empty payment (sender = zero address); only undecodable is 402,
        # offchain too.
        if header and not decode_b64_proto(header, payment):
            raise Reject(402, "base64 decode error or protobuf unmarshal error")
        seg = pb.SegData()
        raw_seg = request.headers.get("livepeer-segment", "")
        if raw_seg and not decode_b64_proto(raw_seg, seg):
            raise Reject(403, "ErrorSegEncoding")
        sender = "0x" + payment.sender[-20:].rjust(20, b"\x00").hex()
        if self.orch.options.onchain:
            signer = recover_hash_signer(segment_message(seg), seg.sig)
            if signer is None or signer.lower() != sender:
                raise Reject(403, "ErrSegSig")
        if not seg.HasField("auth_token"):
            raise Reject(403, "missing auth token")
        why = self.orch.tickets.check_auth_token(seg.auth_token)
        if why is not None:
            raise Reject(403, why)
        return payment, seg, sender

    def _lv2v_process_payment(self, payment: pb.Payment, sender: str, account: str) -> Fraction:
        """``ProcessPayment`` (core/orchestrator.go:113-127): no ticket params = a price-0 payment."""
        if not self.orch.options.onchain or not payment.HasField("ticket_params"):
            return Fraction(0)
        try:
            credit = self.orch.tickets.credit_of(payment, None)
        except PaymentError as exc:
            raise Reject(exc.status, exc.message) from None
        self.orch.balances.credit((sender, account), credit)
        return credit

    # -- LV2V -------------------------------------------------------------------------------------------

    async def start_lv2v(self, request: Request) -> Response:
        o = self.orch
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return PlainTextResponse("Invalid request body", status_code=400)
        model = body.get("model_id")
        if model is None:
            # go-livepeer dereferences model_id unchecked (server/ai_http.go:1024): the handler panics and
            # the connection drops. The devnet answers 400 instead (docs/fidelity.md).
            return go_error("model_id is required", 400)
        if not isinstance(model, str):
            return go_error("json: cannot unmarshal model_id", 400)
        if (
            model not in o.live_apps
            or o.faults.no_capacity
            or o.lv2v_in_use >= o.options.lv2v_capacity
        ):
            return go_error("insufficient capacity", 503)
        mid = os.urandom(8).hex()
        try:
            payment, _seg, sender = self._lv2v_credentials(request)
            self._lv2v_process_payment(payment, sender, mid)
        except Reject as exc:
            return exc.response()
        from livepeer.devnet._wire import params_ev

        # ai_http.go:1067-1070: priced payments need a balance of at least one ticket's EV.
        priced = payment.expected_price.pricePerUnit > 0
        if (
            o.options.onchain
            and priced
            and o.balances.get((sender, mid)) < params_ev(o.tickets.ticket_params(o.base_price()))
        ):
            return go_error("Insufficient balance", 400)
        names = [mid, f"{mid}-out", f"{mid}-control", f"{mid}-events"]
        for name in names:
            o.trickle.create_channel(
                name, mime_type="video/MP2T" if name in names[:2] else "application/json"
            )
        session = LiveSession(
            id=mid,
            kind="lv2v",
            sender=sender,
            channels=names,
            # ai_http.go:1094-1114: debits use the payment's expected price; none means no accounting.
            price_per_second=(
                Fraction(
                    payment.expected_price.pricePerUnit, payment.expected_price.pixelsPerUnit or 1
                )
                * LV2V_PIXELS_PER_SECOND
                if o.options.onchain and priced
                else Fraction(0)
            ),
        )
        base = f"{o.service_url}/ai/trickle"
        runner_body = {
            "model_id": model,
            "params": body.get("params") or {},
            "gateway_request_id": str(body.get("gateway_request_id", "") or ""),
            "stream_id": str(body.get("stream_id", "") or ""),
            "manifest_id": mid,
            "subscribe_url": f"{base}/{mid}",
            "publish_url": f"{base}/{mid}-out",
            "control_url": f"{base}/{mid}-control",
            "events_url": f"{base}/{mid}-events",
        }
        o.lv2v_in_use += 1
        self.sessions[mid] = session
        try:
            await self._start_runner(
                session, o.live_apps[model], "/live-video-to-video", runner_body
            )
        except Reject as exc:
            await self._end(session)
            return exc.response()
        return JSONResponse(
            {
                "publish_url": f"{base}/{mid}",
                "subscribe_url": f"{base}/{mid}-out",
                "control_url": f"{base}/{mid}-control",
                "events_url": f"{base}/{mid}-events",
                "manifest_id": mid,
            }
        )

    async def _start_runner(
        self, session: LiveSession, cls: type, path: str, body: dict[str, Any]
    ) -> None:
        """Serve a fresh runner for ``session`` and POST its start request; Reject(500) on failure."""
        if self.task_group is None:
            raise Reject(500, "orchestrator has no task group for runners")
        if self.orch.faults.worker_dead:
            # GetOrchestrator succeeded but the runner cannot start: clients move to the next candidate.
            raise Reject(500, "runner start failed: worker is dead (devnet fault)")
        from livepeer.runner import serve
        from livepeer.runner.hosting import HostedApp, hosted

        async def run(*, task_status: anyio.abc.TaskStatus[HostedApp]) -> None:
            async with hosted(serve(cls)) as srv:
                task_status.started(srv)
                await session.done.wait()

        srv: HostedApp = await self.task_group.start(run)
        session.runner_url = srv.url
        try:
            r = await self.orch.http.post(
                f"{srv.url}{path}", json=body, headers={"X-Stream-Id": session.id}, timeout=15
            )
        except httpx.HTTPError as exc:
            raise Reject(500, f"runner start failed: {exc}") from None
        if r.status_code >= 400:
            raise Reject(500, f"runner start failed: {r.status_code} {r.text[:200]}")
        self.task_group.start_soon(self._watch, session)

    async def _watch(self, session: LiveSession) -> None:
        """Debit live credit while input flows; end the session when input stops or credit runs out."""
        o = self.orch
        interval = self.lv2v_interval if session.kind == "lv2v" else self.stream_interval
        input_channel = session.channels[0]
        while not session.done.is_set():
            with anyio.move_on_after(min(interval, 1.0)):
                await session.done.wait()
            if session.done.is_set():
                return
            if session.kind == "lv2v" and input_channel not in o.trickle:
                # The client closed its publish channel: go-livepeer tears the whole session down.
                await anyio.sleep(0.5)  # let the runner flush its last output segment
                await self._end(session)
                return
            now = time.monotonic()
            if now - session.last_debit < interval or session.price_per_second <= 0:
                continue
            elapsed = Fraction(now - session.last_debit)
            session.last_debit = now
            if session.kind == "lv2v":
                seq = o.trickle.next_seq(input_channel) if input_channel in o.trickle else 0
                if seq == session.last_input_seq:
                    continue  # debits happen on input segments only
                session.last_input_seq = seq
            key = (session.sender, session.id)
            balance = o.balances.debit(key, session.price_per_second * elapsed)
            if balance < 0:
                session.negative_readings += 1
                if session.kind == "lv2v" or session.negative_readings >= 2:
                    log.info("session %s out of credit", session.id)
                    await self._end(session)
                    return

    async def _end(self, session: LiveSession) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        o = self.orch
        if session.kind == "lv2v":
            o.lv2v_in_use = max(0, o.lv2v_in_use - 1)
        if session.runner_url and session.kind == "lv2v":
            with anyio.move_on_after(2):
                with contextlib.suppress(httpx.HTTPError):
                    await o.http.post(f"{session.runner_url}/stream/stop", json={}, timeout=2)
        for name in session.channels:
            o.trickle.close_channel(name)
        session.done.set()

    async def payment(self, request: Request) -> Response:
        from livepeer.devnet._wire import pb

        o = self.orch
        try:  # server/segment_rpc.go:241-274: 402, 403, then ProcessPayment (400) on segData.ManifestID
            payment, seg, sender = self._lv2v_credentials(request)
            self._lv2v_process_payment(payment, sender, seg.manifestId.decode(errors="replace"))
        except Reject as exc:
            return exc.response()
        info = o.orchestrator_info(sender=bytes(payment.sender[-20:]) or None)
        # Same auth token as the session (go-livepeer keeps it); fresh ticket params.
        info.auth_token.CopyFrom(seg.auth_token)
        result = pb.PaymentResult(info=info)
        return Response(result.SerializeToString(), media_type="application/octet-stream")

    # -- BYOC live streams ------------------------------------------------------------------------------

    def _stream_job(self, request: Request, *, reserve: bool, prefix: str = "") -> Any:
        """``setupOrchJob`` for the stream routes; ``prefix`` is the route's error text before ``err=``.

        Start (byoc/stream_orchestrator.go:28-36) answers 402 for low credit and 400 for every other
        setup error, including an unknown capability; stop, update and payment (:307-310, :358-361,
        :459-462) answer 400 with ``prefix`` + the error. A bad payment drops the connection everywhere.
        """
        try:
            return self.orch.setup_job(request, reserve=reserve)
        except Reject as exc:
            if exc.status == Reject.DROP:
                raise
            if not prefix and exc.message == "Insufficient balance for request":
                raise Reject(402, exc.message) from None
            raise Reject(400, f"{prefix}{exc.message}") from None

    async def stream_start(self, request: Request) -> Response:
        o = self.orch
        try:
            job, cap, key = self._stream_job(request, reserve=True)
        except Reject as exc:
            return exc.response()
        try:
            params = json.loads(job.parameters)
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ValueError("json: cannot unmarshal into Go value of type byoc.JobParameters")
        except ValueError as exc:
            # Returned before the deferred cleanup is set up: the reserved capacity stays taken.
            return go_error(str(exc), 400)
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            o._free(cap.name)
            return go_error("Invalid JSON body", 400)
        sid = job.id or os.urandom(8).hex()
        base = f"{o.service_url}/ai/trickle"
        channels = {"control": f"{sid}-control", "events": f"{sid}-events"}
        if params.get("enable_video_ingress"):
            channels["publish"] = sid
        if params.get("enable_video_egress"):
            channels["subscribe"] = f"{sid}-out"
        if params.get("enable_data_output"):
            channels["data"] = f"{sid}-data"
        mimes = {"publish": "video/MP2T", "subscribe": "video/MP2T", "data": "application/jsonl"}
        for kind, name in channels.items():
            o.trickle.create_channel(name, mime_type=mimes.get(kind, "application/json"))
        worker_body = dict(body)
        worker_body.update(
            {
                "gateway_request_id": sid,
                "stream_id": sid,
                "control_url": f"{base}/{channels['control']}",
                "events_url": f"{base}/{channels['events']}",
            }
        )
        # The runner's view: it subscribes to what the client publishes and publishes what it reads.
        if "publish" in channels:
            worker_body["subscribe_url"] = f"{base}/{channels['publish']}"
        if "subscribe" in channels:
            worker_body["publish_url"] = f"{base}/{channels['subscribe']}"
        if "data" in channels:
            worker_body["data_url"] = f"{base}/{channels['data']}"
        ordered = [
            channels[k]
            for k in ("publish", "subscribe", "control", "events", "data")
            if k in channels
        ]
        session = LiveSession(
            id=sid,
            kind="byoc",
            sender=key[0],
            channels=ordered,
            price_per_second=o.byoc_price_per_second(cap),
            runner_url=cap.url,
            capability=cap.name,
        )
        started = time.monotonic()
        try:
            upstream = await self._worker(cap, "/stream/start", worker_body, sid)
        except Reject:
            for name in ordered:
                o.trickle.close_channel(name)
            o._free(cap.name)
            return go_error("Error sending request to worker", 500)
        self._charge(key, session.price_per_second, started)
        balance = {"Livepeer-Balance": str(math.floor(o.balances.get(key)))}
        if upstream.status_code >= 400:
            for name in ordered:
                o.trickle.close_channel(name)
            o._free(cap.name)
            status, content = _worker_status(o, cap, upstream)
            return Response(content, status_code=status, headers=balance)
        self.sessions[sid] = session
        # Stream credit is keyed like BYOC jobs: (sender, capability); the watcher debits it.
        session.id = sid
        if self.task_group is not None:
            self.task_group.start_soon(self._watch_stream, session, key)
        headers = {
            "X-Control-Url": f"{base}/{channels['control']}",
            "X-Events-Url": f"{base}/{channels['events']}",
            **balance,
        }
        if "publish" in channels:
            headers["X-Publish-Url"] = f"{base}/{channels['publish']}"
        if "subscribe" in channels:
            headers["X-Subscribe-Url"] = f"{base}/{channels['subscribe']}"
        if "data" in channels:
            headers["X-Data-Url"] = f"{base}/{channels['data']}"
        return Response(b"", status_code=200, headers=headers)

    async def _watch_stream(self, session: LiveSession, key: tuple[str, str]) -> None:
        o = self.orch
        while not session.done.is_set():
            with anyio.move_on_after(self.stream_interval):
                await session.done.wait()
            if session.done.is_set() or session.price_per_second <= 0:
                continue
            if o.balances.debit(key, session.price_per_second * Fraction(self.stream_interval)) < 0:
                session.negative_readings += 1
                if session.negative_readings >= 2:
                    await self._stop_stream(session)
                    return

    async def _stop_stream(self, session: LiveSession) -> None:
        cap = self.orch.capabilities.get(session.capability)
        if cap is not None:
            with contextlib.suppress(Reject):
                await self._worker(cap, "/stream/stop", {}, session.id)
        await self._end(session)

    async def _worker(
        self, cap: ExternalCapability, path: str, body: dict[str, Any], sid: str
    ) -> httpx.Response:
        return await self._worker_raw(cap, path, json.dumps(body).encode(), sid)

    async def _worker_raw(
        self, cap: ExternalCapability, path: str, body: bytes, sid: str
    ) -> httpx.Response:
        headers = {"X-Stream-Id": sid}
        if cap.token:
            headers["Authorization"] = f"Bearer {cap.token}"
        try:
            if self.orch.faults.worker_dead:
                raise httpx.ConnectError("worker is dead (devnet fault)")
            headers["Content-Type"] = "application/json"
            r = await self.orch.http.post(
                f"{cap.url}{path}", content=body, headers=headers, timeout=15
            )
        except httpx.HTTPError as exc:
            raise Reject(500, f"worker unreachable: {exc}") from None
        return r

    def _charge(self, key: tuple[str, str], price: Fraction, started: float) -> None:
        if price > 0:
            self.orch.balances.debit(key, price * math.ceil(time.monotonic() - started))

    @staticmethod
    def _stream_id(job: Any) -> str:
        try:
            sid = (json.loads(job.request) or {}).get("stream_id", "")
        except (ValueError, AttributeError):
            sid = ""
        return str(sid or "")

    async def stream_update(self, request: Request) -> Response:
        try:
            job, cap, _key = self._stream_job(
                request, reserve=False, prefix="Failed to stop stream, request not valid err="
            )
        except Reject as exc:
            return exc.response()
        # No stream lookup upstream: the body goes to the worker under the stream id the job names.
        body = await request.body()
        if cap is None:
            return go_error("Error sending request to worker", 500)
        try:
            r = await self._worker_raw(cap, "/stream/params", body, self._stream_id(job))
        except Reject:
            return go_error("Error sending request to worker", 500)
        status, content = _worker_status(self.orch, cap, r)
        return Response(content, status_code=status)

    async def stream_stop(self, request: Request) -> Response:
        try:
            job, cap, _key = self._stream_job(
                request, reserve=False, prefix="Failed to stop stream, request not valid err="
            )
        except Reject as exc:
            return exc.response()
        sid = self._stream_id(job)
        body = await request.body()
        status, content = 200, b""  # go-livepeer answers 200 when the worker cannot be reached
        if cap is not None:
            try:
                r = await self._worker_raw(cap, "/stream/stop", body, sid)
                status, content = _worker_status(self.orch, cap, r)
            except Reject:
                pass
        session = self.sessions.get(sid)
        if session is not None and session.kind == "byoc":
            await self._end(session)
        return Response(content, status_code=status)

    async def stream_payment(self, request: Request) -> Response:
        try:
            _job, _cap, key = self._stream_job(
                request, reserve=False, prefix="Failed to process payment, request not valid err="
            )
        except Reject as exc:
            return exc.response()
        return Response(
            b"", headers={"Livepeer-Balance": str(math.floor(self.orch.balances.get(key)))}
        )


def _worker_status(
    orch: Orchestrator, cap: ExternalCapability, r: httpx.Response
) -> tuple[int, bytes]:
    """``processWorkerResp`` (byoc/stream_orchestrator.go:428-451): a worker 401 unregisters the
    capability and becomes 500 "Orchestrator worker failure"; anything else passes through."""
    if r.status_code == 401:
        orch.capabilities.pop(cap.name, None)
        return 500, b"Orchestrator worker failure"
    return r.status_code, r.content
