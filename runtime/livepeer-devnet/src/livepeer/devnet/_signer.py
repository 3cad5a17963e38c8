"""Remote-signer emulator (go-livepeer ``-remoteSigner``): plain HTTP on loopback, a throwaway key.

``signer = Signer(orchestrators=lambda: [...]); app = signer.app`` — routes of PROTOCOL.md §5 and §3.1:
``POST /sign-orchestrator-info``, ``POST /generate-live-payment``, ``GET /discover-orchestrators`` and the
branch-only ``POST /sign-byoc-job``. Payments and segment credentials are real protobuf; the opaque state
is signed JSON that the signer verifies on the way back.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import os
import re
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livepeer.devnet._keys import EthKey, keccak
from livepeer.devnet._payments import AUTH_TOKEN_TTL
from livepeer.devnet._wire import BUILTIN_PIPELINES, make_payment, params_ev

if TYPE_CHECKING:
    from livepeer.devnet._orchestrator import Orchestrator
    from livepeer.devnet._wire import pb

__all__ = ["Signer", "SignerFaults", "byoc_v1_message"]

LV2V_PIXELS_PER_SECOND = 1280 * 720 * 30
MAX_TICKETS = 100
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
        # The body is ignored, but read: Go's net/http drains an unread body (up to 256 KiB) so the
        # connection stays usable; left unread here, the client's next request on it failed now and then.
        await request.body()
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
                {480: "refresh session", 481: "price too high", 482: "no tickets"}.get(
                    status, "devnet fault"
                ),
                headers,
            )
        try:
            try:
                body = json.loads(await request.body(), parse_float=Decimal)
            except ValueError as exc:
                raise _SignerError(400, f"invalid character in request body: {exc}") from None
            if not isinstance(body, dict):
                raise _SignerError(400, "cannot unmarshal request body into RemotePaymentRequest")
            auth_id = request.headers.get("signer-auth-id", "")
            return JSONResponse(self._payment(_fold_keys(body), auth_id))
        except _SignerError as exc:
            return _error(exc.status, exc.message, exc.headers)

    # -- payment ----------------------------------------------------------------------------------------

    def _payment(self, body: dict[str, Any], auth_id: str) -> dict[str, Any]:
        """``GenerateLivePayment`` step by step (go-livepeer server/remote_signer.go:358-774 at 176aa415).

        Same checks in the same order with the same status codes; messages carry upstream's wording.
        """
        from livepeer.devnet._wire import pb

        orch_raw = _b64_field(body.get("orchestrator"), "orchestrator")
        kind = _str_field(body.get("type"), "type")
        app = _str_field(body.get("app"), "app")
        manifest = _str_field(body.get("manifestid"), "ManifestID")
        in_pixels = body.get("inpixels") or 0
        if isinstance(in_pixels, bool) or not isinstance(in_pixels, int):
            raise _SignerError(400, "invalid inPixels")  # Go's decoder: a 400 for a mistyped value
        caps_raw = _b64_field(body.get("capabilities"), "capabilities")
        state_in = body.get("state")
        state_raw = sig_raw = b""
        if state_in is not None:
            if not isinstance(state_in, dict):
                raise _SignerError(400, "cannot unmarshal state into RemotePaymentStateSig")
            folded = _fold_keys(state_in)
            state_raw = _b64_field(folded.get("state"), "state.State")
            sig_raw = _b64_field(folded.get("sig"), "state.Sig")
        if not orch_raw:  # :379
            raise _SignerError(400, "missing orchestrator")
        info = pb.OrchestratorInfo()
        try:  # :386
            info.ParseFromString(orch_raw)
        except Exception:
            raise _SignerError(400, "proto: cannot parse invalid wire-format data") from None
        price_info = info.price_info
        if (
            not info.HasField("price_info")
            or price_info.pricePerUnit == 0
            or price_info.pixelsPerUnit == 0
        ):  # :391-396
            raise _SignerError(400, "missing or zero priceInfo")
        if not info.HasField("ticket_params"):  # :397
            raise _SignerError(400, "missing ticketParams in OrchestratorInfo")
        orch_address = _address_text(info.address)
        has_state = bool(state_raw or sig_raw)  # :411
        now = time.time()
        if has_state:
            if not _verify_raw(self.key.address, state_raw, sig_raw):  # :413
                raise _SignerError(400, "invalid sig")
            try:
                state = json.loads(state_raw)
                if not isinstance(state, dict):
                    raise ValueError
                state = _RemoteState.from_json(state)
            except (ValueError, TypeError):  # :418
                raise _SignerError(400, "invalid state") from None
            if state.OrchestratorAddress != orch_address:
                raise _SignerError(400, "orchestratorAddress mismatch")
            if state.App != app:
                raise _SignerError(400, "app mismatch")
            if state.Type and state.Type != kind:
                raise _SignerError(400, "job type mismatch")
            state.Type = kind
            state.SequenceNumber += 1
        else:
            state = _RemoteState(
                StateID=os.urandom(8).hex(),
                OrchestratorAddress=orch_address,
                App=app,
                InitialPricePerUnit=price_info.pricePerUnit,
                InitialPixelsPerUnit=price_info.pixelsPerUnit,
                Type=kind,
            )
        if not manifest:  # :455-464
            if has_state:
                raise _SignerError(400, "missing manifestID")
            manifest = os.urandom(8).hex()
        capabilities = pb.Capabilities()
        if caps_raw:  # :471-479
            try:
                capabilities.ParseFromString(caps_raw)
            except Exception:
                raise _SignerError(
                    400, "proto: cannot parse invalid wire-format data (capabilities)"
                ) from None
        balance = Fraction(0)
        if state.Balance:  # :489-497
            with contextlib.suppress(ValueError, ZeroDivisionError):
                balance = Fraction(state.Balance)
        pm_session = "0x" + info.ticket_params.recipient_rand_hash.hex()
        nonce = state.SenderNonce if state.PMSessionID == pm_session else 0  # :500-504
        if not info.HasField("auth_token"):  # broadcast.go:1633-1635 -> :530-533
            raise _SignerError(
                400,
                "remote signer could not check whether to refresh session: missing auth token",
            )
        # broadcast.go:1637-1644: refresh inside the last 10 % of the 30 min token lifetime. Ticket params
        # never expire on the devnet (no chain), so the second 480 cause is not emulated.
        if now > info.auth_token.expiration - int(AUTH_TOKEN_TTL * 0.1):
            raise _SignerError(
                480,
                "refresh session for remote signer",
                {"Livepeer-Orchestrator-URL": info.transcoder},
            )
        last_update = state.LastUpdate or now  # :536-564
        billable_secs = now - last_update
        if kind == "lv2v":
            if billable_secs <= 0:
                billable_secs = 60.0  # first call prepays 60 s
            units = int(LV2V_PIXELS_PER_SECOND * billable_secs)  # int64(float): truncation
        elif kind == "live":
            if billable_secs <= 0:
                billable_secs = 10.0
            units = math.ceil(billable_secs)
        elif kind == "fixed":
            units = 1
        elif kind:
            raise _SignerError(400, "invalid job type")
        else:
            units = in_pixels
        if units <= 0:
            raise _SignerError(400, "missing billable unit or job type")
        price = Fraction(price_info.pricePerUnit, price_info.pixelsPerUnit)  # :572
        request_max = _parse_max_price(body.get("maxprice"), kind)  # :573-577
        initial_max: Fraction | None = None
        if has_state:  # :579-585
            if state.InitialPricePerUnit <= 0 or state.InitialPixelsPerUnit <= 0:
                raise _SignerError(400, "invalid initial price in state")
            initial_max = Fraction(state.InitialPricePerUnit, state.InitialPixelsPerUnit)
        configured = (
            Fraction(self.max_price_per_unit) if self.max_price_per_unit is not None else None
        )
        _check_price(  # :586-594: any rise above the session's first price is 481
            price,
            [
                ("configured maximum price", configured),
                ("request maxPrice", request_max),
                ("initial session price", initial_max),
            ],
        )
        initial = Fraction(state.InitialPricePerUnit, state.InitialPixelsPerUnit)
        fee = initial * units  # :597 fee at the session's initial price
        ev = params_ev(info.ticket_params)
        # segment_rpc.go:762-789 + core/accounting.go:41-66: credit needed = max(fee, one ticket's EV).
        count = _per_request_tickets(fee, balance, ev)  # 482 at :606-614
        if count > MAX_TICKETS:  # :615-626
            raise _SignerError(400, f"numTickets {count} exceeds maximum of {MAX_TICKETS}")
        # Real tickets (the client's ticket code, go-livepeer's pm hashing), signed by the signer's key:
        # the orchestrator recovers each signature and credits the payment's sender. Expected price =
        # the price in the given OrchestratorInfo (segment_rpc.go:827-830).
        payment = make_payment(
            info.ticket_params,
            sender=self.key.address_bytes,
            expected_price=(price_info.pricePerUnit, price_info.pixelsPerUnit),
            nonces=range(nonce + 1, nonce + count + 1),
            sign=self.key.sign_raw,
        )
        nonce += count
        balance += ev * count - fee  # segment_rpc.go:791-815
        state.Balance = _rat_string(balance)
        state.LastUpdate = now
        state.PMSessionID = pm_session
        state.SenderNonce = nonce
        if auth_id and state.AuthID != auth_id:  # :695-706
            if state.AuthID:
                raise _SignerError(500, "remote signer auth ID changed")
            state.AuthID = auth_id
        # genSegCreds with an empty segment (remote_signer.go:651): its hash is keccak256 of no bytes.
        seg = pb.SegData(
            manifestId=manifest.encode(),
            seq=state.SequenceNumber,
            hash=keccak(b""),
            auth_token=info.auth_token,
        )
        if caps_raw:
            seg.capabilities.CopyFrom(capabilities)
        seg.sig = self.key.sign_hash_of(segment_message(seg))
        raw_state = state.to_json()
        return {
            "payment": _b64(payment.SerializeToString()),
            "segCreds": _b64(seg.SerializeToString()),
            "state": {"State": _b64(raw_state), "Sig": _b64(self.key.sign_raw(raw_state))},
        }


@dataclass
class _RemoteState:
    """go-livepeer's ``RemotePaymentState`` (server/remote_signer.go:148-162), same JSON field names.

    Signed like upstream's ``signState``: personal_sign of the JSON bytes as they are (no pre-hash).
    ``LastUpdate`` is kept as unix seconds here and written as RFC 3339 like Go's ``time.Time``.
    """

    StateID: str = ""
    PMSessionID: str = ""
    LastUpdate: float = 0.0
    OrchestratorAddress: str = "0x" + "00" * 20
    App: str = ""
    AuthExpiry: int = 0
    SenderNonce: int = 0
    Balance: str = ""
    InitialPricePerUnit: int = 0
    InitialPixelsPerUnit: int = 0
    Type: str = ""
    SequenceNumber: int = 0
    AuthID: str = ""

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> _RemoteState:
        folded = _fold_keys(raw)
        out = cls()
        for name in out.__dataclass_fields__:
            if name.lower() not in folded or folded[name.lower()] is None:
                continue
            value = folded[name.lower()]
            if name == "LastUpdate":
                value = _parse_go_time(str(value))
            elif name == "OrchestratorAddress":
                value = _address_text(bytes.fromhex(str(value).removeprefix("0x")))
            elif (
                isinstance(getattr(out, name), int)
                and (isinstance(value, bool) or not isinstance(value, int))
            ) or (isinstance(getattr(out, name), str) and not isinstance(value, str)):
                raise TypeError(name)
            setattr(out, name, value)
        return out

    def to_json(self) -> bytes:
        data = dict(self.__dict__)
        data["LastUpdate"] = _format_go_time(self.LastUpdate)
        return json.dumps(data, separators=(",", ":")).encode()


def _fold_keys(value: dict[str, Any]) -> dict[str, Any]:
    # encoding/json matches object keys to struct fields case-insensitively.
    return {str(k).lower(): v for k, v in value.items()}


def _b64_field(value: Any, name: str) -> bytes:
    # []byte fields travel as standard base64 strings; null or absent is empty.
    if value is None:
        return b""
    if not isinstance(value, str):
        raise _SignerError(400, f"cannot unmarshal {name} into Go value of type []uint8")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _SignerError(400, f"illegal base64 data in {name}") from None


def _str_field(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _SignerError(400, f"cannot unmarshal {name} into Go value of type string")
    return value


def _address_text(raw: bytes) -> str:
    # ethcommon.BytesToAddress keeps the last 20 bytes (left-pads shorter input); JSON is lower-case hex.
    return "0x" + raw[-20:].rjust(20, b"\x00").hex()


def _parse_max_price(value: Any, kind: str) -> Fraction | None:
    """``parseRemotePaymentMaxPrice`` (server/remote_signer.go:228-257)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _SignerError(400, "cannot unmarshal maxPrice into LiveRunnerPriceInfo")
    folded = _fold_keys(value)
    try:
        price = Fraction(str(folded.get("price", "")).strip())
    except (ValueError, ZeroDivisionError):
        price = Fraction(0)
    if price <= 0:
        raise _SignerError(400, "maxPrice.price must be a positive decimal")
    if str(folded.get("currency") or "").strip().lower() != "wei":
        raise _SignerError(400, "maxPrice.currency must be wei")
    expected = PRICE_UNITS.get(kind)
    if expected is None:
        raise _SignerError(400, "maxPrice requires payment type live, lv2v, or fixed")
    if str(folded.get("unit") or "").strip().lower() != expected:
        raise _SignerError(400, f"maxPrice.unit must be {expected} for payment type {kind}")
    return price


def _check_price(price: Fraction, ceilings: list[tuple[str, Fraction | None]]) -> None:
    """``checkRemotePaymentPrice`` (server/remote_signer.go:259-273): the lowest ceiling applies."""
    effective: tuple[str, Fraction] | None = None
    for source, ceiling in ceilings:
        if ceiling is not None and (effective is None or ceiling < effective[1]):
            effective = (source, ceiling)
    if effective is not None and price > effective[1]:
        raise _SignerError(
            481,
            f"orchestrator price {_float_string(price, 3)} exceeds {effective[0]} ceiling "
            f"{_float_string(effective[1], 3)}",
        )


def _float_string(value: Fraction, places: int) -> str:
    # big.Rat.FloatString: rounded half away from zero.
    scaled = abs(value) * 10**places
    whole = int(scaled)
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    sign = "-" if value < 0 and whole else ""
    text = str(whole).rjust(places + 1, "0")
    return f"{sign}{text[:-places]}.{text[-places:]}" if places else f"{sign}{text}"


def _rat_string(value: Fraction) -> str:
    # big.Rat.RatString: "a/b", or "a" when the denominator is 1 (as str(Fraction)).
    return str(value)


def _format_go_time(ts: float) -> str:
    if ts <= 0:
        return "0001-01-01T00:00:00Z"
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_go_time(text: str) -> float:
    if text.startswith("0001-01-01T00:00:00"):
        return 0.0
    match = _GO_TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"bad time {text!r}")
    base, frac, zone = match.groups()
    moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    seconds = moment.timestamp() + (float("0" + frac) if frac else 0.0)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        seconds -= sign * (hours * 3600 + minutes * 60)
    return seconds


_GO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|z|[+-]\d{2}:\d{2})")


def _verify_raw(address: str, message: bytes, signature: bytes) -> bool:
    """go-livepeer ``crypto.VerifySig`` of a personal_sign over ``message`` as given."""
    if len(signature) != 65 or signature[64] not in (0, 1, 27, 28):
        return False
    s_value = int.from_bytes(signature[32:64], "big")
    if s_value == 0 or s_value > _SECP256K1_HALF_N:
        return False
    from eth_account import Account
    from eth_account.messages import encode_defunct

    if signature[64] < 27:
        signature = signature[:64] + bytes([signature[64] + 27])
    try:
        return bool(
            Account.recover_message(encode_defunct(primitive=message), signature=signature)
            == address
        )
    except Exception:  # eth-keys raises several types for malformed signatures
        return False


_SECP256K1_HALF_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2


def _per_request_tickets(fee: Fraction, balance: Fraction, ev: Fraction) -> int:
    """Tickets for a payment: ``newBalanceUpdate`` (``server/segment_rpc.go:762-789``) raises the minimum
    credit to one ticket's EV and ``Balance.StageUpdate`` (``core/accounting.go:41-66``) sends none when the
    state's balance already covers it; that is the 482 "no tickets" answer (``server/remote_signer.go:606-614``).
    The same rule for every payment type."""
    floor = max(fee, ev)
    if balance >= floor or ev <= 0:
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
    names = {v: k for k, v in BUILTIN_PIPELINES.items()}
    keys: list[str] = []
    caps = orch.capabilities_proto()
    for cid, constraints in sorted(caps.constraints.PerCapability.items()):
        for model in sorted(constraints.models):
            if cid in names:
                keys.append(f"{names[cid]}/{model}")
    return keys


def _peek_transcoder(raw: bytes) -> str:
    from livepeer.devnet._wire import pb

    try:
        body = json.loads(raw)
        info = pb.OrchestratorInfo()
        info.ParseFromString(base64.b64decode(str(body.get("orchestrator", ""))))
        return info.transcoder
    except Exception:
        return ""
