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

from livepeer.devnet._gohttp import Reject, go_error
from livepeer.devnet._grpc import GrpcError, GrpcStatus, is_grpc, serve_unary
from livepeer.devnet._keys import EthKey, recover_hash_signer
from livepeer.devnet._payments import (
    Balances,
    TicketBook,
    decode_b64_proto,
    whole_wei,
)
from livepeer.devnet._wire import BUILTIN_PIPELINES, BYOC_CAPABILITY_ID, LV2V_CAPABILITY_ID

if TYPE_CHECKING:
    from livepeer.devnet._wire import pb
    from livepeer.trickle._server import TrickleServer

__all__ = ["ExternalCapability", "Faults", "Orchestrator", "OrchestratorOptions"]

log = logging.getLogger("livepeer.devnet")

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
    # Built-in AI pipelines served by stand-in runners: pipeline -> model id. The defaults are the models a
    # Go gateway asks for when a request names none (server/ai_process.go:32-41).
    ai_models: dict[str, str] = field(
        default_factory=lambda: {
            "text-to-image": "stabilityai/sdxl-turbo",
            "llm": "meta-llama/llama-3.1-8B-Instruct",
        }
    )
    # Concurrent requests per AI model (go-livepeer reserves one runner per request: ai_http.go:1582).
    ai_capacity: int = 4
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


def _b64_json(value: str) -> dict[str, Any] | None:
    """go: ``base64.StdEncoding.DecodeString`` then ``json.Unmarshal`` into a struct; None if either fails."""
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None
    if decoded is None:
        return {}  # JSON null unmarshals into the zero struct
    return decoded if isinstance(decoded, dict) else None


def _go_string(decoded: dict[str, Any], name: str) -> str | None:
    """A JSON string field as go's decoder reads it: absent or null -> "", another type -> None (error)."""
    value = decoded.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def _hex_sig(value: str) -> bytes | None:
    """byoc/job_orchestrator.go:559-566 and 597-605: drop two characters only when the string is longer
    than 130, then hex-decode; None where go's ``hex.DecodeString`` fails (so ``"0x"`` fails, ``""`` is
    empty bytes)."""
    text = value[2:] if len(value) > 130 else value
    if len(text) % 2 or any(c not in "0123456789abcdefABCDEF" for c in text):
        return None
    return bytes.fromhex(text)


def _same_address(recovered: str | None, claimed: str) -> bool:
    return recovered is not None and recovered.lower() == claimed.lower()


def _fmt_balance(value: Fraction) -> str:
    return str(whole_wei(value))


class Orchestrator:
    """State and ASGI app of one emulated go-livepeer orchestrator."""

    def __init__(self, options: OrchestratorOptions | None = None) -> None:
        self.options = options or OrchestratorOptions()
        self.key = EthKey.generate()
        self.faults = Faults()
        self.service_url = ""
        self.tickets = TicketBook(recipient=self.key.address_bytes)
        self.balances = Balances()
        # Senders with a ticket reserve (lower-case addresses); None: every sender has one. The devnet
        # funds its signer's key; go-livepeer refuses priced work to others (insufficient sender reserve).
        self.funded_senders: set[str] | None = None
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
        from livepeer.devnet._ai import AIRoutes

        self.ai = AIRoutes(self)
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
            *self.ai.routes(),
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

    def byoc_price(self, cap: ExternalCapability | None) -> tuple[int, int]:
        """``JobPriceInfo``: 0 offchain and for unknown capabilities; whole wei per second on-chain
        (``PriceToInt64`` floors price_per_unit / price_scaling, core/ai_orchestrator.go:1189-1212)."""
        if not self.priced() or cap is None:
            return (0, 1)
        scaled = Fraction(cap.price_per_unit * self.faults.price_multiplier, cap.price_scaling or 1)
        return (math.floor(scaled), 1)

    def funded(self, sender: str) -> bool:
        """Whether ``sender`` has a reserve: ``None`` in ``funded_senders`` means every sender has one."""
        return self.funded_senders is None or sender.lower() in self.funded_senders

    def byoc_price_per_second(self, cap: ExternalCapability) -> Fraction:
        ppu, scaling = self.byoc_price(cap)
        return Fraction(ppu, scaling or 1)

    # -- gRPC -------------------------------------------------------------------------------------------

    async def get_orchestrator(self, raw: bytes) -> bytes:
        from livepeer.devnet._wire import pb

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
        self, request: pb.OrchestratorRequest | None = None, sender: bytes | None = None
    ) -> pb.OrchestratorInfo:
        """``GetOrchestrator``'s answer; ticket params are bound to the requesting ``sender`` (go: the
        recipient rand hash covers it), taken from ``request`` when there is one."""
        from livepeer.devnet._wire import pb

        if request is not None and request.address:
            sender = request.address

        requested = request is not None and request.HasField("capabilities")
        info = pb.OrchestratorInfo(transcoder=self.service_url)
        price = self.base_price()
        if self.options.onchain:
            info.address = self.key.address_bytes
            info.price_info.CopyFrom(pb.PriceInfo(pricePerUnit=price[0], pixelsPerUnit=price[1]))
            info.ticket_params.CopyFrom(self.tickets.ticket_params(price, sender or bytes(20)))
        info.auth_token.CopyFrom(self.tickets.auth_token())
        info.capabilities.CopyFrom(self.capabilities_proto())
        if not requested:
            # External capabilities are priced whatever the mode: go-livepeer registers their price
            # as a "default" capability price (core/ai_orchestrator.go:1131) and orchestratorInfo
            # always lists capability prices (server/rpc.go:601); this is how BYOC names are found.
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
            if self.options.onchain:
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
                            capability=BUILTIN_PIPELINES[pipeline],
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
        from livepeer.devnet._wire import pb

        caps = pb.Capabilities(version="devnet")
        ids = {LV2V_CAPABILITY_ID, *(BUILTIN_PIPELINES[p] for p in self.options.ai_models)}
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
            cid = BUILTIN_PIPELINES[pipeline]
            m = per[cid].models[model]
            m.warm = True
            m.capacity = self.options.ai_capacity
            m.capacityInUse = min(m.capacity, self.ai.in_use.get((pipeline, model), 0))
            caps.capacities[cid] = self.options.ai_capacity
        return caps

    # -- BYOC: registration -----------------------------------------------------------------------------

    async def capability_register(self, request: Request) -> Response:
        if request.headers.get("authorization", "") != self.options.secret:
            return go_error("invalid authorization", 400)  # byoc/job_orchestrator.go:42, 81
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
            return go_error("invalid authorization", 400)  # byoc/job_orchestrator.go:42, 81
        name = (await request.body()).decode(errors="replace").strip()
        if self.capabilities.pop(name, None) is None:
            return PlainTextResponse("capability not found", status_code=400)
        return PlainTextResponse("ok")

    # -- BYOC: token ------------------------------------------------------------------------------------

    def _token_sender(self, request: Request) -> str:
        """``verifyTokenCreds`` (byoc/job_orchestrator.go:583-614): the sender address or a 400."""
        header = request.headers.get("livepeer-eth-address", "")
        if not header:
            raise Reject(
                400,
                "Must have eth address and signature on address in Livepeer-Eth-Address header",
            )
        invalid = Reject(400, "Invalid eth address header ")
        decoded = _b64_json(header)
        if decoded is None:
            raise invalid
        addr, sig = _go_string(decoded, "addr"), _go_string(decoded, "sig")
        if addr is None or sig is None:
            raise invalid
        raw = _hex_sig(sig)
        if raw is None:
            raise invalid  # checked before the offchain always-valid VerifySig: "0x" fails here
        if self.options.onchain and not _same_address(recover_hash_signer(addr, raw), addr):
            raise invalid
        return addr

    async def process_token(self, request: Request) -> Response:
        """``GetJobToken`` (byoc/job_orchestrator.go:113-206), branch for branch."""
        if request.method != "GET":
            return go_error("Method not allowed", 405)
        try:
            addr = self._token_sender(request)
        except Reject as exc:
            return exc.response()
        name = request.headers.get("livepeer-capability", "")
        if not name:
            return go_error(
                "Job capabilities not provided, must provide comma separated capabilities in "
                "Livepeer-Capability header",
                400,
            )
        cap = self.capabilities.get(name)
        capacity = 0
        if cap is not None and not self.faults.no_capacity:
            capacity = cap.capacity - cap.load
        price = self.byoc_price(cap)
        if price[0] > 0 and not self.funded(addr):
            # JobPriceInfo -> TxCostMultiplier -> faceValue: no reserve to back tickets.
            return go_error("Could not get price err=insufficient sender reserve", 503)
        token: dict[str, Any] = {"sender_address": {"addr": addr, "sig": _sender_sig(request)}}
        if self.options.onchain:
            token["ticket_params"] = _ticket_params_json(
                self.tickets.ticket_params(price, _address_bytes(addr))
            )
        balance = math.floor(self.balances.get(_credit_key(addr, name)))
        if balance:
            token["balance"] = balance
        price_json: dict[str, int] = {}
        if price[0]:
            price_json["pricePerUnit"] = price[0]
        price_json["pixelsPerUnit"] = price[1]
        token["price"] = price_json
        token["service_addr"] = self.service_url
        if capacity:
            token["available_capacity"] = capacity
        token["LastNonce"] = 0
        return Response(json.dumps(token) + "\n", media_type="application/json")

    # -- BYOC: jobs -------------------------------------------------------------------------------------

    def parse_job(self, request: Request) -> JobRequest:
        """``verifyJobCreds`` up to the signature (byoc/job_orchestrator.go:548-572, utils.go:53-72)."""
        creds = Reject(400, "Could not verify job creds")
        decoded = _b64_json(request.headers.get("livepeer", ""))
        if decoded is None:
            raise creds
        fields = {n: _go_string(decoded, n) for n in ("id", "request", "parameters", "capability")}
        sender, sig = _go_string(decoded, "sender"), _go_string(decoded, "sig")
        timeout = decoded.get("timeout_seconds", 0)
        if timeout is None:
            timeout = 0
        if (
            any(v is None for v in fields.values())
            or sender is None
            or sig is None
            or isinstance(timeout, bool)
            or not isinstance(timeout, int)
        ):
            raise creds
        if timeout == 0:
            raise Reject(400, "no timeout_seconds set with request, timeout_seconds is required")
        job = JobRequest(
            id=fields["id"] or "",
            request=fields["request"] or "",
            parameters=fields["parameters"] or "",
            capability=fields["capability"] or "",
            sender=sender,
            sig=sig,
            timeout_seconds=timeout,
        )
        raw = _hex_sig(job.sig)
        if raw is None:
            raise creds  # "0x" fails hex decoding before the offchain always-valid check
        if self.options.onchain and not _same_address(
            recover_hash_signer(job.request + job.parameters, raw), job.sender
        ):
            raise creds
        return job

    def setup_job(
        self, request: Request, *, reserve: bool = True
    ) -> tuple[JobRequest, ExternalCapability | None, tuple[str, str]]:
        """``setupOrchJob`` (byoc/job_orchestrator.go:442-503): verify, reserve capacity, price, payment,
        60 s of credit, request JSON. A reserved unit of capacity is the caller's to release on success.

        Refusals: 400 / 503 ``Reject`` with go's texts; a payment that fails to decode or process on a
        priced capability panics upstream (nil balance, :491-497), here ``Reject.DROP``.
        """
        job = self.parse_job(request)
        cap = self.capabilities.get(job.capability)
        if reserve:
            if cap is None or self.faults.no_capacity:
                raise Reject(503, "No capacity available for capability")
            cap.load += 1
        key = _credit_key(job.sender, job.capability)
        ppu, ppx = self.byoc_price(cap)
        if ppu > 0 and not self.funded(job.sender):
            raise Reject(400, "Could not get job price")
        price = Fraction(ppu, ppx)
        if price > 0:
            header = request.headers.get("livepeer-payment", "")
            if header and not self.apply_payment(header, job.capability, reserve=reserve):
                raise Reject(Reject.DROP, "payment error")
            if self.balances.get(key) < price * MIN_BALANCE_SECONDS:
                self._free(job.capability)
                raise Reject(400, "Insufficient balance for request")
        try:
            decoded = json.loads(job.request)
        except ValueError as exc:
            raise Reject(400, f"Unable to unmarshal job request details err={exc}") from None
        if decoded is not None and not isinstance(decoded, dict):
            raise Reject(
                400,
                "Unable to unmarshal job request details err=json: cannot unmarshal "
                "into Go value of type byoc.JobRequestDetails",
            )
        return job, cap, key

    def _free(self, capability: str) -> None:
        """``FreeExternalCapabilityCapacity``: load goes down even below zero, as upstream."""
        cap = self.capabilities.get(capability)
        if cap is not None:
            cap.load -= 1

    def apply_payment(self, header: str, capability: str, *, reserve: bool = True) -> bool:
        """``processPayment`` + ``ProcessPayment``: credit accepted tickets to (payment sender, capability).

        False when go-livepeer would report a payment error (then panic): the header does not decode, or
        a ticket is refused (tickets credited before it stay credited; capacity is released first).
        """
        from livepeer.devnet._wire import pb

        payment = pb.Payment()
        if not decode_b64_proto(header, payment):
            return False

        def credit(sender: bytes, ev: Fraction) -> None:
            self.balances.credit(_credit_key("0x" + sender.hex(), capability), ev)

        error = self.tickets.process_payment(payment, credit)
        if error is not None:
            log.info("BYOC payment refused: %s", error)
            self._free(capability)
            return False
        return True

    async def process_request(self, request: Request) -> Response:
        """``ProcessJob`` / ``processJob`` (byoc/job_orchestrator.go:209-438)."""
        if request.method != "POST":
            return go_error("Method not allowed", 405)
        try:
            job, found, key = self.setup_job(request)
        except Reject as exc:
            return exc.response()
        assert found is not None  # reserve=True refuses unknown capabilities
        cap = found
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

        def charged() -> dict[str, str]:
            # chargeForCompute: ceil(seconds) x price, then the balance header (job_orchestrator.go:526).
            if price > 0:
                self.balances.debit(key, price * math.ceil(time.monotonic() - started))
            return {"Livepeer-Balance": _fmt_balance(self.balances.get(key))}

        # Upstream releases the reserved capacity only once the worker answered (the defer at :315):
        # unreachable, timed-out and 401 workers keep it, as here.
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
            out = charged()
            response = go_error(
                "job not able to be processed, removing capability err=context deadline exceeded",
                500,
            )
            response.headers.update(out)
            return response
        except httpx.HTTPError as exc:
            # go-livepeer drops a capability whose worker cannot be reached.
            self.capabilities.pop(cap.name, None)
            response = go_error(f"job not able to be processed, removing capability err={exc}", 500)
            response.headers.update(charged())
            return response
        release_in_stream = False
        try:
            if upstream.status_code == 401:
                await upstream.aclose()
                self.capabilities.pop(cap.name, None)
                response = go_error(
                    "job not able to be processed, removing capability err=worker auth token failed",
                    500,
                )
                response.headers.update(charged())
                return response
            if "text/event-stream" in upstream.headers.get("content-type", ""):
                release_in_stream = True
                return self._sse_response(upstream, job, cap, key, price, started)
            content = await upstream.aread()
            await upstream.aclose()
        finally:
            if not release_in_stream and upstream.status_code != 401:
                self._free(cap.name)
        if upstream.status_code >= 400:
            response = go_error(content.decode("utf-8", "replace"), upstream.status_code)
            response.headers.update(charged())
            response.headers["X-Metadata"] = upstream.headers.get("x-metadata", "")
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
            return response
        out_headers = {"X-Metadata": upstream.headers.get("x-metadata", ""), **charged()}
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
                self._free(cap.name)
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
    """``net.TicketParams`` as go's encoding/json writes it: base64 bytes, empty fields omitted."""
    out: dict[str, Any] = {}
    for name in (
        "recipient",
        "face_value",
        "win_prob",
        "recipient_rand_hash",
        "seed",
        "expiration_block",
    ):
        value = getattr(params, name)
        if value:
            out[name] = base64.b64encode(value).decode()
    exp: dict[str, Any] = {}
    if params.expiration_params.creation_round:
        exp["creation_round"] = params.expiration_params.creation_round
    if params.expiration_params.creation_round_block_hash:
        exp["creation_round_block_hash"] = base64.b64encode(
            params.expiration_params.creation_round_block_hash
        ).decode()
    out["expiration_params"] = exp
    return out


def _address_bytes(address: str) -> bytes:
    """go-ethereum ``HexToAddress``: lenient; the last 20 bytes of whatever hex there is."""
    text = address[2:] if address[:2] in ("0x", "0X") else address
    if len(text) % 2:
        text = "0" + text
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    return raw[-20:].rjust(20, b"\0")


def _credit_key(address: str, capability: str) -> tuple[str, str]:
    """Balances are keyed by (sender address, capability name), the address normalised as go does."""
    return ("0x" + _address_bytes(address).hex(), capability)


def _sender_sig(request: Request) -> str:
    decoded = _b64_json(request.headers.get("livepeer-eth-address", "")) or {}
    return _go_string(decoded, "sig") or ""
