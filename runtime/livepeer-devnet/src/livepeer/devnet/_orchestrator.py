"""Orchestrator emulator: gRPC ``GetOrchestrator`` and the HTTP routes of go-livepeer on one TLS port.

``orch = Orchestrator(OrchestratorOptions(onchain=False)); app = orch.asgi`` — host ``app`` with
``livepeer.runner.hosting.hosted(app, tls=...)`` and set ``orch.service_url`` to the URL it listens on.
Route behaviour and status codes follow PROTOCOL.md §4, §6, §7, §8 and §10; docs/devnet.md lists deviations.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from livepeer.devnet._grpc import GrpcError, GrpcStatus, is_grpc, serve_unary
from livepeer.devnet._keys import EthKey, recover_hash_signer
from livepeer.devnet._payments import Balances, PaymentError, TicketBook, decode_b64_proto

if TYPE_CHECKING:
    from livepeer.client._proto import lp_rpc_pb2 as pb
    from livepeer.trickle._server import TrickleServer

__all__ = ["ExternalCapability", "Faults", "Orchestrator", "OrchestratorOptions"]

log = logging.getLogger("livepeer.devnet")

BYOC_CAPABILITY_ID = 37
LV2V_CAPABILITY_ID = 35
# Built-in pipeline ids (go-livepeer core/capabilities.go).
PIPELINE_IDS = {
    "text-to-image": 27,
    "image-to-image": 28,
    "image-to-video": 29,
    "upscale": 30,
    "audio-to-text": 31,
    "segment-anything-2": 32,
    "llm": 33,
    "image-to-text": 34,
    "live-video-to-video": 35,
    "text-to-speech": 36,
}
# go-livepeer requires credit for 60 s of work before every BYOC call.
MIN_BALANCE_SECONDS = 60
SSE_DEBIT_SECONDS = 5
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Faults:
    """Switches for failure injection on one orchestrator (all off by default; flip them at any time).

    ``worker_delay``: seconds added before forwarding to a worker (slow worker).
    ``worker_dead``: forwarding fails as if the worker were unreachable (500, capability unregistered).
    ``no_capacity``: every capacity check fails (503).
    ``price_multiplier``: scales every price from now on (a mid-session price rise).
    ``trickle_470``: the next N trickle subscriber GETs answer 470 "too far behind".
    """

    worker_delay: float = 0.0
    worker_dead: bool = False
    no_capacity: bool = False
    price_multiplier: int = 1
    trickle_470: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "worker_delay": self.worker_delay,
            "worker_dead": self.worker_dead,
            "no_capacity": self.no_capacity,
            "price_multiplier": self.price_multiplier,
            "trickle_470": self.trickle_470,
        }

    def update(self, values: dict[str, Any]) -> None:
        """Apply ``{"name": value}``; ValueError on unknown names or wrong types."""
        for name, value in values.items():
            current = getattr(self, name, None)
            if name.startswith("_") or current is None:
                raise ValueError(f"unknown fault {name!r}")
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"fault {name!r} takes true/false")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"fault {name!r} takes a non-negative integer")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"fault {name!r} takes a non-negative number")
            setattr(self, name, type(current)(value))


@dataclass
class OrchestratorOptions:
    """Static configuration of one emulated orchestrator."""

    name: str = "orch-0"
    onchain: bool = False
    secret: str = field(default_factory=lambda: secrets.token_hex(8))
    # Base / LV2V price in wei per pixelsPerUnit pixels (go-livepeer -pricePerUnit / -pixelsPerUnit).
    price_per_unit: int = 1
    pixels_per_unit: int = 100
    lv2v_models: tuple[str, ...] = ("noop", "grayscale")
    lv2v_capacity: int = 4
    # Built-in AI pipelines served by stand-in runners: pipeline -> model id.
    ai_models: dict[str, str] = field(
        default_factory=lambda: {"text-to-image": "devnet/tiny-png", "llm": "devnet/echo-llm"}
    )
    trickle_idle_timeout: float = 300.0


@dataclass
class ExternalCapability:
    """A BYOC capability registered by a worker (go-livepeer's ExternalCapability)."""

    name: str
    url: str
    capacity: int = 1
    price_per_unit: int = 0
    price_scaling: int = 1
    currency: str = "wei"
    token: str = ""
    description: str = ""
    load: int = 0


@dataclass(frozen=True)
class JobRequest:
    id: str
    request: str
    parameters: str
    capability: str
    sender: str
    sig: str
    timeout_seconds: int


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> Response:
        return PlainTextResponse(self.message, status_code=self.status)


def _b64_json(value: str | None, what: str) -> dict[str, Any]:
    if not value:
        raise _Reject(400, f"Missing {what} header")
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _Reject(400, f"Unable to parse {what} header: {exc}") from None
    if not isinstance(decoded, dict):
        raise _Reject(400, f"Unable to parse {what} header: not a JSON object")
    return decoded


def _hex_sig(value: str) -> bytes | None:
    text = value[2:] if value.startswith(("0x", "0X")) else value
    if len(text) != 130:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _fmt_balance(value: Fraction) -> str:
    return str(round(value))


class Orchestrator:
    """State and ASGI app of one emulated go-livepeer orchestrator."""

    def __init__(self, options: OrchestratorOptions | None = None) -> None:
        self.options = options or OrchestratorOptions()
        self.key = EthKey.generate()
        self.faults = Faults()
        self.service_url = ""
        self.tickets = TicketBook(recipient=self.key.address_bytes)
        self.balances = Balances()
        self.capabilities: dict[str, ExternalCapability] = {}
        # AI stand-in runner URLs: pipeline -> base URL (set by the devnet).
        self.ai_runners: dict[str, str] = {}
        # Live runner URL per LV2V model (set by the devnet).
        self.live_runners: dict[str, str] = {}
        # Live pipeline classes the orchestrator starts one runner of per session (as go-livepeer starts
        # a runner container): LV2V models by model id, BYOC live capabilities by name.
        self.live_apps: dict[str, type] = {}
        self.byoc_live_classes: dict[str, type] = {}
        self.lv2v_in_use = 0
        self.trickle: TrickleServer = self._new_trickle()
        self._http: httpx.AsyncClient | None = None
        self.streams: dict[str, Any] = {}
        from livepeer.devnet._live import LiveRoutes

        self.live = LiveRoutes(self)
        from livepeer.devnet._apps import AppRoutes

        # BYOC worker URLs by sample name (the live-runner apps proxy to them); set by the devnet.
        self.devnet_workers: dict[str, str] = {}
        self.apps = AppRoutes(self, [])
        self.app = self._build_app()

    # -- setup ------------------------------------------------------------------------------------------

    def _new_trickle(self) -> TrickleServer:
        from livepeer.trickle._server import TrickleServer

        return TrickleServer(idle_timeout=self.options.trickle_idle_timeout)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        return self._http

    async def aclose(self) -> None:
        await self.live.stop_all()
        self.trickle.close_all()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def reset_after_restart(self) -> None:
        """What a go-livepeer restart forgets: sessions, channels, balances, registrations stay (re-sent)."""
        self.trickle.close_all()
        self.trickle = self._new_trickle()
        self.balances.clear()
        self.lv2v_in_use = 0
        self.streams.clear()
        self.apps.reset()
        self.tickets = TicketBook(recipient=self.key.address_bytes)

    def _build_app(self) -> Starlette:
        routes = [
            Route("/process/token", self.process_token, methods=["GET", "POST", "PUT", "DELETE"]),
            Route(
                "/process/request/{route:path}",
                self.process_request,
                methods=["GET", "POST", "PUT"],
            ),
            Route("/process/request", self.process_request, methods=["GET", "POST", "PUT"]),
            Route("/capability/register", self.capability_register, methods=["POST"]),
            Route("/capability/unregister", self.capability_unregister, methods=["POST"]),
            *self.live.routes(),
            *self.apps.routes(),
            Mount("/ai/trickle", app=self._trickle_app),
        ]
        return Starlette(routes=routes)

    async def _trickle_app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET" and self.faults.trickle_470 > 0:
            path = scope.get("path", "")
            name = path.rstrip("/").split("/")[-2] if path.count("/") >= 4 else ""
            if name in self.trickle:
                self.faults.trickle_470 -= 1
                latest = str(self.trickle.next_seq(name)).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 470,
                        "headers": [
                            (b"lp-trickle-latest", latest),
                            (b"lp-trickle-seq", path.rsplit("/", 1)[-1].encode()),
                            (b"content-type", b"text/plain"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b"Entry not found"})
                return
        await self.trickle(scope, receive, send)

    async def asgi(self, scope: Any, receive: Any, send: Any) -> None:
        """The one-port app: HTTP/2 gRPC to ``GetOrchestrator``, everything else to the HTTP routes."""
        if is_grpc(scope):
            await serve_unary(
                scope, receive, send, {"/net.Orchestrator/GetOrchestrator": self.get_orchestrator}
            )
            return
        await self.app(scope, receive, send)

    # -- prices -----------------------------------------------------------------------------------------

    def base_price(self) -> tuple[int, int]:
        m = self.faults.price_multiplier
        return (self.options.price_per_unit * m, self.options.pixels_per_unit)

    def priced(self) -> bool:
        return self.options.onchain

    def byoc_price(self, cap: ExternalCapability) -> tuple[int, int]:
        if not self.priced():
            return (0, 1)
        return (cap.price_per_unit * self.faults.price_multiplier, cap.price_scaling or 1)

    def byoc_price_per_second(self, cap: ExternalCapability) -> Fraction:
        ppu, scaling = self.byoc_price(cap)
        return Fraction(ppu, scaling or 1)

    # -- gRPC -------------------------------------------------------------------------------------------

    async def get_orchestrator(self, raw: bytes) -> bytes:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        request = pb.OrchestratorRequest()
        try:
            request.ParseFromString(raw)
        except Exception:
            raise GrpcError(
                GrpcStatus.INTERNAL, "grpc: failed to unmarshal the received message"
            ) from None
        if self.options.onchain:
            address = "0x" + request.address.hex()
            signer = (
                recover_hash_signer(_checksum(request.address), request.sig)
                if len(request.address) == 20
                else None
            )
            if signer is None or signer.lower() != address.lower():
                raise GrpcError(
                    GrpcStatus.UNKNOWN,
                    "Invalid orchestrator request: orchestrator req sig check failed",
                )
        # go-livepeer server/rpc.go:540-570 at 176aa415: only a request naming live-video-to-video models
        # (and not ignoreCapacityCheck) is checked; it fails when none of those models has capacity.
        wanted = request.capabilities.constraints.PerCapability
        if not request.ignoreCapacityCheck and LV2V_CAPABILITY_ID in wanted:
            free = not self.faults.no_capacity and self.lv2v_in_use < self.options.lv2v_capacity
            models = wanted[LV2V_CAPABILITY_ID].models
            if not any(free and m in self.live_apps for m in models):
                raise GrpcError(
                    GrpcStatus.UNKNOWN, "Invalid orchestrator request: OrchestratorCapped"
                )
        reply: bytes = self.orchestrator_info(request).SerializeToString()
        return reply

    def orchestrator_info(
        self, request: pb.OrchestratorRequest | None = None
    ) -> pb.OrchestratorInfo:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        requested = request is not None and request.HasField("capabilities")
        info = pb.OrchestratorInfo(transcoder=self.service_url)
        price = self.base_price()
        if self.options.onchain:
            info.address = self.key.address_bytes
            info.price_info.CopyFrom(pb.PriceInfo(pricePerUnit=price[0], pixelsPerUnit=price[1]))
            info.ticket_params.CopyFrom(self.tickets.ticket_params(price))
        info.auth_token.CopyFrom(self.tickets.auth_token())
        info.capabilities.CopyFrom(self.capabilities_proto())
        if not requested:
            if self.options.onchain:
                for cap in sorted(self.capabilities.values(), key=lambda c: c.name):
                    ppu, scaling = self.byoc_price(cap)
                    info.capabilities_prices.append(
                        pb.PriceInfo(
                            pricePerUnit=ppu,
                            pixelsPerUnit=scaling,
                            capability=BYOC_CAPABILITY_ID,
                            constraint=cap.name,
                        )
                    )
                for model in self.options.lv2v_models:
                    info.capabilities_prices.append(
                        pb.PriceInfo(
                            pricePerUnit=price[0],
                            pixelsPerUnit=price[1],
                            capability=LV2V_CAPABILITY_ID,
                            constraint=model,
                        )
                    )
                for pipeline, model in self.options.ai_models.items():
                    info.capabilities_prices.append(
                        pb.PriceInfo(
                            pricePerUnit=price[0],
                            pixelsPerUnit=price[1],
                            capability=PIPELINE_IDS[pipeline],
                            constraint=model,
                        )
                    )
            for model in self.options.lv2v_models:
                hw = info.hardware.add(pipeline="live-video-to-video", model_id=model)
                hw.gpu_info["0"].CopyFrom(
                    pb.GPUComputeInfo(
                        id="devnet-gpu-0", name="Devnet Virtual GPU", major=8, minor=6
                    )
                )
        return info

    def capabilities_proto(self) -> pb.Capabilities:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        caps = pb.Capabilities(version="devnet")
        ids = {LV2V_CAPABILITY_ID, *(PIPELINE_IDS[p] for p in self.options.ai_models)}
        if self.capabilities:
            ids.add(BYOC_CAPABILITY_ID)
        words = [0] * (max(ids) // 64 + 1)
        for cid in ids:
            words[cid // 64] |= 1 << (cid % 64)
        caps.bitstring.extend(words)
        per = caps.constraints.PerCapability
        free = (
            0 if self.faults.no_capacity else max(0, self.options.lv2v_capacity - self.lv2v_in_use)
        )
        for model in self.options.lv2v_models:
            m = per[LV2V_CAPABILITY_ID].models[model]
            m.warm = True
            m.capacity = self.options.lv2v_capacity
            m.capacityInUse = self.options.lv2v_capacity - free
        caps.capacities[LV2V_CAPABILITY_ID] = self.options.lv2v_capacity
        for pipeline, model in self.options.ai_models.items():
            cid = PIPELINE_IDS[pipeline]
            per[cid].models[model].warm = True
            per[cid].models[model].capacity = 1
            caps.capacities[cid] = 1
        return caps

    # -- BYOC: registration -----------------------------------------------------------------------------

    async def capability_register(self, request: Request) -> Response:
        if request.headers.get("authorization", "") != self.options.secret:
            return PlainTextResponse("invalid authorization", status_code=400)
        try:
            body = json.loads(await request.body())
            cap = ExternalCapability(
                name=str(body["name"]),
                url=str(body["url"]).rstrip("/"),
                capacity=int(body.get("capacity", 1)),
                price_per_unit=int(body.get("price_per_unit", 0)),
                price_scaling=int(body.get("price_scaling", 1) or 1),
                currency=str(body.get("currency", "wei") or "wei"),
                token=str(body.get("token", "") or ""),
                description=str(body.get("description", "") or ""),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return PlainTextResponse(f"invalid capability: {exc}", status_code=400)
        if not cap.name or not cap.url:
            return PlainTextResponse(
                "invalid capability: name and url are required", status_code=400
            )
        self.capabilities[cap.name] = cap
        return PlainTextResponse("ok")

    async def capability_unregister(self, request: Request) -> Response:
        if request.headers.get("authorization", "") != self.options.secret:
            return PlainTextResponse("invalid authorization", status_code=400)
        name = (await request.body()).decode(errors="replace").strip()
        if self.capabilities.pop(name, None) is None:
            return PlainTextResponse("capability not found", status_code=400)
        return PlainTextResponse("ok")

    # -- BYOC: token ------------------------------------------------------------------------------------

    def _eth_address(self, request: Request) -> tuple[str, str]:
        decoded = _b64_json(request.headers.get("livepeer-eth-address"), "Livepeer-Eth-Address")
        addr, sig = decoded.get("addr"), decoded.get("sig")
        if not isinstance(addr, str) or not isinstance(sig, str):
            raise _Reject(
                400, "Unable to parse Livepeer-Eth-Address header: addr and sig must be strings"
            )
        if self.options.onchain:
            raw = _hex_sig(sig)
            signer = recover_hash_signer(addr, raw) if raw is not None else None
            if signer is None or signer.lower() != addr.lower():
                raise _Reject(400, "Could not verify sender signature")
        return addr, sig

    async def process_token(self, request: Request) -> Response:
        if request.method != "GET":
            return PlainTextResponse("Method Not Allowed", status_code=405)
        try:
            addr, sig = self._eth_address(request)
        except _Reject as exc:
            return exc.response()
        name = request.headers.get("livepeer-capability", "")
        if not name:
            return PlainTextResponse("Missing Livepeer-Capability header", status_code=400)
        token: dict[str, Any] = {"sender_address": {"addr": addr, "sig": sig}}
        cap = self.capabilities.get(name)
        price = self.byoc_price(cap) if cap is not None else self.base_price()
        if self.options.onchain:
            token["ticket_params"] = _ticket_params_json(self.tickets.ticket_params(price))
        balance = self.balances.get((addr.lower(), name))
        if round(balance):
            token["balance"] = round(balance)
        price_json = {}
        if price[0] and self.priced():
            price_json["pricePerUnit"] = price[0]
        if price[1]:
            price_json["pixelsPerUnit"] = price[1]
        token["price"] = price_json
        token["service_addr"] = self.service_url
        if cap is not None and not self.faults.no_capacity:
            available = max(0, cap.capacity - cap.load)
            if available:
                token["available_capacity"] = available
        token["LastNonce"] = 0
        return Response(json.dumps(token), media_type="application/json")

    # -- BYOC: jobs -------------------------------------------------------------------------------------

    def parse_job(self, request: Request) -> JobRequest:
        decoded = _b64_json(request.headers.get("livepeer"), "Livepeer")
        try:
            job = JobRequest(
                id=str(decoded.get("id", "")),
                request=str(decoded.get("request", "")),
                parameters=str(decoded.get("parameters", "") or ""),
                capability=str(decoded.get("capability", "")),
                sender=str(decoded.get("sender", "") or ""),
                sig=str(decoded.get("sig", "") or ""),
                timeout_seconds=int(decoded.get("timeout_seconds", 0) or 0),
            )
        except (TypeError, ValueError):
            raise _Reject(400, "Could not parse job request") from None
        if self.options.onchain:
            raw = _hex_sig(job.sig)
            signer = (
                recover_hash_signer(job.request + job.parameters, raw) if raw is not None else None
            )
            if signer is None or signer.lower() != job.sender.lower():
                raise _Reject(400, "Could not verify job creds")
        if job.timeout_seconds <= 0:
            raise _Reject(400, "Job timeout_seconds must be set")
        return job

    def setup_job(
        self, request: Request, *, low_balance_status: int = 400
    ) -> tuple[JobRequest, ExternalCapability, tuple[str, str]]:
        """go-livepeer ``setupOrchJob``: verify, find the capability, apply payment, check 60 s credit."""
        job = self.parse_job(request)
        cap = self.capabilities.get(job.capability)
        if cap is None or self.faults.no_capacity:
            raise _Reject(503, "No capacity available for capability")
        key = (job.sender.lower(), cap.name)
        price = self.byoc_price_per_second(cap)
        payment = request.headers.get("livepeer-payment", "")
        if price > 0 and payment:
            self.apply_payment(payment, key, job.sender)
        if price > 0 and self.balances.get(key) < price * MIN_BALANCE_SECONDS:
            raise _Reject(low_balance_status, "Insufficient balance for request")
        try:
            decoded = json.loads(job.request)
        except ValueError:
            raise _Reject(400, "Could not parse job request: request is not JSON") from None
        if not isinstance(decoded, dict):
            raise _Reject(400, "Could not parse job request: request is not a JSON object")
        return job, cap, key

    def apply_payment(self, header: str, key: tuple[str, str], sender: str) -> Fraction:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        payment = pb.Payment()
        if not decode_b64_proto(header, payment):
            raise _Reject(402, "Could not decode payment")
        try:
            sender_bytes = bytes.fromhex(sender[2:]) if sender.startswith("0x") else None
        except ValueError:
            sender_bytes = None
        try:
            credit = self.tickets.credit_of(payment, sender_bytes)
        except PaymentError as exc:
            raise _Reject(exc.status, exc.message) from None
        return self.balances.credit(key, credit)

    async def process_request(self, request: Request) -> Response:
        if request.method != "POST":
            return PlainTextResponse("Method Not Allowed", status_code=405)
        try:
            job, cap, key = self.setup_job(request)
        except _Reject as exc:
            return exc.response()
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("request body too large", status_code=413)
        route = request.path_params.get("route", "")
        target = f"{cap.url}/{route}" if route else cap.url
        headers = {"content-type": request.headers.get("content-type", "application/octet-stream")}
        if cap.token:
            headers["authorization"] = f"Bearer {cap.token}"
        price = self.byoc_price_per_second(cap)
        started = time.monotonic()
        cap.load += 1
        release_in_stream = False
        try:
            if self.faults.worker_delay:
                await anyio.sleep(self.faults.worker_delay)
            if self.faults.worker_dead:
                raise httpx.ConnectError("worker is dead (devnet fault)")
            worker_request = self.http.build_request(
                "POST", target, content=body, headers=headers, timeout=float(job.timeout_seconds)
            )
            upstream = await self.http.send(worker_request, stream=True)
        except httpx.TimeoutException:
            cap.load -= 1
            return PlainTextResponse("worker request timed out", status_code=500)
        except httpx.HTTPError as exc:
            cap.load -= 1
            # go-livepeer drops a capability whose worker cannot be reached.
            self.capabilities.pop(cap.name, None)
            return PlainTextResponse(f"worker unreachable: {exc}", status_code=500)
        try:
            if upstream.status_code == 401:
                await upstream.aclose()
                self.capabilities.pop(cap.name, None)
                return PlainTextResponse("worker refused authorization", status_code=500)
            if "text/event-stream" in upstream.headers.get("content-type", ""):
                release_in_stream = True
                return self._sse_response(upstream, job, cap, key, price, started)
            content = await upstream.aread()
            await upstream.aclose()
        finally:
            if not release_in_stream:
                cap.load -= 1
        if upstream.status_code >= 400:
            return Response(content, status_code=upstream.status_code, media_type="text/plain")
        elapsed = math.ceil(time.monotonic() - started)
        balance = self.balances.debit(key, price * elapsed) if price > 0 else self.balances.get(key)
        out_headers = {
            "X-Metadata": upstream.headers.get("x-metadata", ""),
            "Livepeer-Balance": _fmt_balance(balance),
        }
        return Response(
            content,
            status_code=upstream.status_code,
            headers=out_headers,
            media_type=upstream.headers.get("content-type", "application/octet-stream"),
        )

    def _sse_response(
        self,
        upstream: httpx.Response,
        job: JobRequest,
        cap: ExternalCapability,
        key: tuple[str, str],
        price: Fraction,
        started: float,
    ) -> Response:
        balances = self.balances

        def balance_event() -> bytes:
            value = float(balances.get(key))
            return f"data: {json.dumps({'balance': round(value, 3)})}\n\n".encode()

        async def body() -> AsyncIterator[bytes]:
            deadline = started + job.timeout_seconds
            next_debit = time.monotonic() + SSE_DEBIT_SECONDS
            lines = upstream.aiter_lines()
            try:
                while True:
                    now = time.monotonic()
                    if now >= deadline:
                        yield balance_event() + b"data: [DONE]\n\n"
                        return
                    wait = min(deadline, next_debit) - now if price > 0 else deadline - now
                    line: str | None = None
                    with anyio.move_on_after(max(wait, 0.0)):
                        try:
                            line = await lines.__anext__()
                        except StopAsyncIteration:
                            break
                    if price > 0 and time.monotonic() >= next_debit:
                        next_debit += SSE_DEBIT_SECONDS
                        if balances.debit(key, price * SSE_DEBIT_SECONDS) < 0:
                            yield (
                                b"event: insufficient balance\n"
                                b'data: {"balance": 0}\n\n'
                                b"data: [DONE]\n\n"
                            )
                            return
                    if line is None:
                        continue
                    if "[DONE]" in line:
                        yield balance_event()
                    yield line.encode() + b"\n"
            finally:
                cap.load -= 1
                await upstream.aclose()

        headers = {
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Metadata": upstream.headers.get("x-metadata", ""),
            "Livepeer-Payment-Balance": _fmt_balance(self.balances.get(key)),
        }
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def _checksum(address: bytes) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(address))


def _ticket_params_json(params: pb.TicketParams) -> dict[str, Any]:
    def b64(value: bytes) -> str:
        return base64.b64encode(value).decode()

    return {
        "recipient": b64(params.recipient),
        "face_value": b64(params.face_value),
        "win_prob": b64(params.win_prob),
        "recipient_rand_hash": b64(params.recipient_rand_hash),
        "seed": b64(params.seed),
        "expiration_block": b64(params.expiration_block),
        "expiration_params": {
            "creation_round": params.expiration_params.creation_round,
            "creation_round_block_hash": b64(params.expiration_params.creation_round_block_hash),
        },
    }
