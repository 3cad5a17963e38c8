"""Remote-signer emulator (go-livepeer ``-remoteSigner``): plain HTTP on loopback, a throwaway key.

``signer = Signer(orchestrators=lambda: [...]); app = signer.app`` — routes of PROTOCOL.md §5 and §3.1:
``POST /sign-orchestrator-info``, ``POST /generate-live-payment``, ``GET /discover-orchestrators`` and the
branch-only ``POST /sign-byoc-job``. Payments and segment credentials are real protobuf; the opaque state
is signed JSON that the signer verifies on the way back.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livepeer.client._tickets import make_payment
from livepeer.devnet._keys import EthKey, keccak, recover_hash_signer
from livepeer.devnet._payments import AUTH_TOKEN_TTL, ticket_ev

if TYPE_CHECKING:
    from livepeer.client._proto import lp_rpc_pb2 as pb
    from livepeer.devnet._orchestrator import Orchestrator

__all__ = ["Signer", "SignerFaults", "byoc_v1_message"]

LV2V_PIXELS_PER_SECOND = 1280 * 720 * 30
MAX_TICKETS = 100
FIRST_CALL_SECONDS = {"lv2v": 60, "live": 10}
PRICE_UNITS = {"live": "seconds", "lv2v": "720p-pixel-seconds", "fixed": "fixed"}
BYOC_V1_PREFIX = b"LP_BYOC_JOB_V1\x00\x00"


@dataclass
class SignerFaults:
    """Failure switches: ``storm_status`` (480, 481, 482, 400 or 500) answers the next ``storm_count``
    ``/generate-live-payment`` calls; ``discovery_warm`` False keeps discovery at 503.

    ``sign_byoc_job`` is a branch-only switch, off by default as on master go-livepeer (404): True serves
    ``/sign-byoc-job`` as side branches do (PROTOCOL §5.3), whose signatures master orchestrators refuse.
    """

    storm_status: int = 0
    storm_count: int = 0
    discovery_warm: bool = True
    sign_byoc_job: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "storm_status": self.storm_status,
            "storm_count": self.storm_count,
            "discovery_warm": self.discovery_warm,
            "sign_byoc_job": self.sign_byoc_job,
        }

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            current = getattr(self, name, None)
            if name.startswith("_") or current is None:
                raise ValueError(f"unknown signer fault {name!r}")
            if isinstance(current, bool) != isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"signer fault {name!r} has the wrong type")
            if name == "storm_status" and value not in (0, 400, 480, 481, 482, 500):
                raise ValueError("storm_status must be one of 0, 400, 480, 481, 482, 500")
            setattr(self, name, value)


def byoc_v1_message(
    job_id: str, capability: str, request: str, parameters: str, timeout: int
) -> bytes:
    """The branch-only ``/sign-byoc-job`` layout (PROTOCOL.md §5.3)."""
    out = bytearray(BYOC_V1_PREFIX)
    out += struct.pack(">I", timeout & 0xFFFFFFFF)
    for part in (job_id, capability, request, parameters):
        raw = part.encode()
        out += struct.pack(">I", len(raw)) + raw
    return bytes(out)


class _SignerError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # go-livepeer masks 500 and 503 messages.
    if status == 500:
        message = "Internal Server Error"
    elif status == 503:
        message = "Service Unavailable Error"
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


@dataclass
class Signer:
    """State and app of the remote-signer emulator."""

    orchestrators: Callable[[], Sequence[Orchestrator]] = field(default=lambda: ())
    discovery_enabled: bool = True
    max_price_per_unit: int | None = None
    key: EthKey = field(default_factory=EthKey.generate)
    faults: SignerFaults = field(default_factory=SignerFaults)
    calls: int = 0

    def __post_init__(self) -> None:
        self.address_signature = self.key.sign_hash_of(self.key.address)
        routes = [
            Route("/sign-orchestrator-info", self.sign_orchestrator_info, methods=["POST"]),
            Route("/generate-live-payment", self.generate_live_payment, methods=["POST"]),
            Route("/sign-byoc-job", self.sign_byoc_job, methods=["POST"]),
        ]
        if self.discovery_enabled:
            routes.append(Route("/discover-orchestrators", self.discover, methods=["GET"]))
        self.app = Starlette(routes=routes)

    # -- routes -----------------------------------------------------------------------------------------

    async def sign_orchestrator_info(self, request: Request) -> Response:
        return JSONResponse(
            {"address": self.key.address, "signature": "0x" + self.address_signature.hex()}
        )

    async def sign_byoc_job(self, request: Request) -> Response:
        if not self.faults.sign_byoc_job:
            return Response("404 page not found\n", status_code=404, media_type="text/plain")
        try:
            body = json.loads(await request.body())
            message = byoc_v1_message(
                str(body.get("id", "")),
                str(body["capability"]),
                str(body.get("request", "")),
                str(body.get("parameters", "") or ""),
                int(body.get("timeout_seconds", 0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "invalid request")
        signature = self.key.sign_hash_of(message)
        return JSONResponse({"sender": self.key.address, "signature": "0x" + signature.hex()})

    async def discover(self, request: Request) -> Response:
        if not self.faults.discovery_warm:
            return _error(503, "cache empty")
        wanted = {c for c in request.query_params.getlist("caps") if c}
        out: list[dict[str, Any]] = []
        for orch in self.orchestrators():
            caps = orch_capability_keys(orch)
            if self.max_price_per_unit is not None and orch.options.onchain:
                ppu, ppx = orch.base_price()
                if Fraction(ppu, ppx) > self.max_price_per_unit:
                    continue
            runners = orch.apps.runner_entries() if orch.apps.runners else []
            caps = caps + [r["app"] for r in runners]
            if wanted and not wanted.intersection(caps):
                continue
            entry: dict[str, Any] = {"address": orch.service_url, "score": 1}
            if caps:
                entry["capabilities"] = caps
            if runners:
                entry["runners"] = runners
            out.append(entry)
        return JSONResponse(out)

    async def generate_live_payment(self, request: Request) -> Response:
        self.calls += 1
        if self.faults.storm_count > 0 and self.faults.storm_status:
            self.faults.storm_count -= 1
            status = self.faults.storm_status
            headers = None
            if status == 480:
                headers = {"Livepeer-Orchestrator-URL": _peek_transcoder(await request.body())}
            return _error(
                status,
                {480: "refresh session", 481: "price too high", 482: "skip"}.get(
                    status, "devnet fault"
                ),
                headers,
            )
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise _SignerError(400, "request body must be a JSON object")
            return JSONResponse(self._payment(body))
        except ValueError:
            return _error(400, "invalid JSON body")
        except _SignerError as exc:
            return _error(exc.status, exc.message, exc.headers)

    # -- payment ----------------------------------------------------------------------------------------

    def _payment(self, body: dict[str, Any]) -> dict[str, Any]:
        from livepeer.client._proto import lp_rpc_pb2 as pb

        info = pb.OrchestratorInfo()
        try:
            info.ParseFromString(base64.b64decode(str(body.get("orchestrator", "")), validate=True))
        except Exception:
            raise _SignerError(400, "invalid orchestrator info") from None
        if not body.get("orchestrator"):
            raise _SignerError(400, "missing orchestrator info")
        if not info.HasField("auth_token") or not info.auth_token.token:
            raise _SignerError(400, "missing auth token")
        if not info.HasField("ticket_params") or not info.HasField("price_info"):
            raise _SignerError(400, "missing ticket params or price")
        if info.price_info.pricePerUnit <= 0 or info.price_info.pixelsPerUnit <= 0:
            raise _SignerError(400, "invalid price info")
        kind = body.get("type") or ""
        if kind not in ("", "live", "lv2v", "fixed"):
            raise _SignerError(400, f"invalid type {kind!r}")
        app = str(body.get("app", "") or "")
        manifest = body.get("ManifestID", body.get("manifestID", body.get("manifestid")))
        if manifest is not None and not isinstance(manifest, str):
            raise _SignerError(400, "invalid ManifestID")
        price = Fraction(info.price_info.pricePerUnit, info.price_info.pixelsPerUnit)
        self._check_max_price(body.get("maxPrice"), kind, price)
        now = time.time()
        state_in = body.get("state")
        if state_in is not None:
            if not manifest:
                raise _SignerError(400, "ManifestID is required with state")
            state = self._open_state(state_in)
            if state["OrchestratorAddress"] != info.address.hex():
                raise _SignerError(400, "orchestrator address mismatch")
            if state["App"] != app or state["Type"] != kind:
                raise _SignerError(400, "app or type mismatch")
            initial = Fraction(state["InitialPricePerUnit"], state["InitialPixelsPerUnit"])
            if price > 2 * initial:
                raise _SignerError(481, "price more than doubled")
            elapsed = max(0.0, now - float(state["LastUpdate"]))
        else:
            state = {
                "StateID": os.urandom(8).hex(),
                "PMSessionID": "",
                "OrchestratorAddress": info.address.hex(),
                "App": app,
                "Type": kind,
                "SenderNonce": 0,
                "Balance": "0",
                "InitialPricePerUnit": info.price_info.pricePerUnit,
                "InitialPixelsPerUnit": info.price_info.pixelsPerUnit,
                "SequenceNumber": 0,
            }
            elapsed = float(FIRST_CALL_SECONDS.get(kind, 0))
        # 480: auth token in its last 10 % or ticket params stale -> the client must refresh orch info.
        if info.auth_token.expiration - now < AUTH_TOKEN_TTL * 0.1:
            raise _SignerError(
                480, "auth token expiring", {"Livepeer-Orchestrator-URL": info.transcoder}
            )
        if kind == "lv2v":
            fee = price * LV2V_PIXELS_PER_SECOND * Fraction(elapsed)
        elif kind == "live":
            fee = price * Fraction(elapsed)
        elif kind == "fixed":
            fee = price
        else:
            fee = price * _in_pixels(body.get("inPixels"))
        balance = Fraction(state["Balance"])
        ev = ticket_ev(info.ticket_params)
        if ev <= 0:
            raise _SignerError(400, "ticket EV is zero")
        if not kind:
            count = _per_request_tickets(fee, balance, ev)
        else:
            if state_in is not None and balance >= fee and fee > 0:
                raise _SignerError(482, "no payment needed")
            count = max(1, math.ceil((fee - balance) / ev)) if fee > balance else 1
        if count > MAX_TICKETS:
            raise _SignerError(
                400, f"numTickets {count} exceeds maximum of 100"
            )  # remote_signer.go:622
        balance += ev * count - fee
        # Sender nonces continue within a chain on the same ticket parameters and restart at 1 otherwise
        # (remote_signer.go:499-504: the PM session id is the recipientRandHash).
        pm_session = info.ticket_params.recipient_rand_hash.hex()
        nonce = int(state["SenderNonce"]) if state["PMSessionID"] == pm_session else 0
        # Real tickets (the client's ticket code, go-livepeer's pm hashing), signed by the signer's key:
        # the orchestrator recovers each signature and credits the payment's sender.
        payment = make_payment(
            info.ticket_params,
            sender=self.key.address_bytes,
            expected_price=(info.price_info.pricePerUnit, info.price_info.pixelsPerUnit),
            nonces=range(nonce + 1, nonce + count + 1),
            sign=self.key.sign_raw,
        )
        nonce += count
        state["SequenceNumber"] = int(state["SequenceNumber"]) + 1
        state["SenderNonce"] = nonce
        state["PMSessionID"] = pm_session
        state["Balance"] = str(balance)
        state["LastUpdate"] = now
        state["AuthExpiry"] = info.auth_token.expiration
        # genSegCreds with an empty segment (remote_signer.go:651): its hash is keccak256 of no bytes.
        seg = pb.SegData(
            manifestId=(manifest or "").encode(),
            seq=int(state["SequenceNumber"]),
            hash=keccak(b""),
            auth_token=info.auth_token,
        )
        if body.get("capabilities"):
            try:
                seg.capabilities.ParseFromString(
                    base64.b64decode(str(body["capabilities"]), validate=True)
                )
            except Exception:
                raise _SignerError(400, "invalid capabilities") from None
        seg.sig = self.key.sign_hash_of(segment_message(seg))
        raw_state = json.dumps(state, sort_keys=True).encode()
        return {
            "payment": _b64(payment.SerializeToString()),
            "segCreds": _b64(seg.SerializeToString()),
            "state": {"State": _b64(raw_state), "Sig": _b64(self.key.sign_hash_of(raw_state))},
        }

    def _open_state(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _SignerError(400, "invalid state")
        try:
            raw = base64.b64decode(str(value.get("State", "")), validate=True)
            sig = base64.b64decode(str(value.get("Sig", "")), validate=True)
        except (binascii.Error, ValueError):
            raise _SignerError(400, "invalid state encoding") from None
        signer = recover_hash_signer(raw, sig)
        if signer is None or signer != self.key.address:
            raise _SignerError(400, "invalid state signature")
        state = json.loads(raw)
        if not isinstance(state, dict):
            raise _SignerError(400, "invalid state")
        return state

    def _check_max_price(self, value: Any, kind: str, price: Fraction) -> None:
        if value is not None:
            if not isinstance(value, dict):
                raise _SignerError(400, "invalid maxPrice")
            unit = value.get("unit")
            if unit != PRICE_UNITS.get(kind):
                raise _SignerError(400, f"invalid maxPrice unit {unit!r} for type {kind!r}")
            try:
                ceiling = Fraction(str(value.get("price")))
            except (ValueError, TypeError):
                raise _SignerError(400, "invalid maxPrice price") from None
            # Every unit is priced per pricePerUnit/pixelsPerUnit here (wei per pixel for lv2v).
            if price > ceiling:
                raise _SignerError(481, "price above maxPrice")
        if self.max_price_per_unit is not None and price > self.max_price_per_unit:
            raise _SignerError(481, "price above the signer's max price")


def _in_pixels(value: Any) -> int:
    """``inPixels`` of a request without ``type`` (per-request AI): required and positive
    (``server/remote_signer.go:536-569``; Go's JSON decoder turns a mistyped value into a 400 too)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        if value is not None and not isinstance(value, (int, float)):
            raise _SignerError(400, "invalid inPixels")
        raise _SignerError(400, "missing billable unit or job type")
    return value


def _per_request_tickets(fee: Fraction, balance: Fraction, ev: Fraction) -> int:
    """Tickets for a per-request payment: ``newBalanceUpdate`` (``server/segment_rpc.go:762-789``) raises the
    minimum credit to one ticket's EV and ``Balance.StageUpdate`` (``core/accounting.go:41-66``) sends none
    when the state's balance already covers it; that is the 482 "no tickets" answer
    (``server/remote_signer.go:606-614``)."""
    floor = max(fee, ev)
    if balance >= floor:
        raise _SignerError(482, "no tickets")
    return math.ceil((floor - balance) / ev)


def segment_message(seg: pb.SegData) -> bytes:
    """What segment credentials sign: ``SegTranscodingMetadata.Flatten`` (``core/streamdata.go:73-83``) of a
    segment without profiles, i.e. manifest id, the sequence number left-padded to 32 bytes, the 32-byte hash.
    """
    seq = seg.seq.to_bytes(32, "big") if seg.seq >= 0 else bytes(32)
    return bytes(seg.manifestId) + seq + bytes(seg.hash)[-32:].rjust(32, b"\x00")


def orch_capability_keys(orch: Orchestrator) -> list[str]:
    """``pipeline/model`` keys from PerCapability, as the signer's discovery builds them."""
    from livepeer.devnet._orchestrator import PIPELINE_IDS

    names = {v: k for k, v in PIPELINE_IDS.items()}
    keys: list[str] = []
    caps = orch.capabilities_proto()
    for cid, constraints in sorted(caps.constraints.PerCapability.items()):
        for model in sorted(constraints.models):
            if cid in names:
                keys.append(f"{names[cid]}/{model}")
    return keys


def _peek_transcoder(raw: bytes) -> str:
    from livepeer.client._proto import lp_rpc_pb2 as pb

    try:
        body = json.loads(raw)
        info = pb.OrchestratorInfo()
        info.ParseFromString(base64.b64decode(str(body.get("orchestrator", ""))))
        return info.transcoder
    except Exception:
        return ""
