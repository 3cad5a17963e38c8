"""Remote-signer vectors from go-livepeer server/remote_signer_test.go (and the code they test) at 176aa415.

The devnet signer app (``livepeer.devnet._signer.Signer``) is driven in-process over ASGI so each vector can
set what its Go test sets: the signer's configured max price and the ticket EV (the Go tests' mock sender
``ev``; here the ticket params' face value and win probability give EV = face * prob / (2**256 - 1) exactly).
Request bodies are built the way Go's ``json.Marshal(RemotePaymentRequest{...})`` writes them.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet._keys import EthKey
from livepeer.devnet._signer import Signer

pytestmark = pytest.mark.anyio

STUB_AUTH = {"token": b"foo", "session_id": "bar"}  # server/segment_rpc_test.go:35 (expires in 1 h)


def _ev_params(ev: int) -> pb.TicketParams:
    """Ticket params whose EV is exactly ``ev`` wei: face ``ev``, win probability the maximum (2**256 - 1)."""
    return pb.TicketParams(
        recipient=bytes(range(20)),
        face_value=ev.to_bytes(32, "big"),
        win_prob=((1 << 256) - 1).to_bytes(32, "big"),
        recipient_rand_hash=b"\x11" * 32,
    )


def _orch(
    *,
    address: bytes = b"\x00" * 19 + b"\x01",
    price: tuple[int, int] | None = (1, 1),
    ev: int = 1,
    ticket_params: bool = True,
    auth: bool = True,
    expires_in: float = 3600,
) -> pb.OrchestratorInfo:
    info = pb.OrchestratorInfo(address=address, transcoder="http://orch.example")
    if price is not None:
        info.price_info.CopyFrom(pb.PriceInfo(pricePerUnit=price[0], pixelsPerUnit=price[1]))
    if ticket_params:
        info.ticket_params.CopyFrom(_ev_params(ev))
    if auth:
        info.auth_token.CopyFrom(
            pb.AuthToken(**STUB_AUTH, expiration=int(time.time() + expires_in))  # type: ignore[arg-type]
        )
    return info


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def go_request(
    orchestrator: pb.OrchestratorInfo | bytes | None,
    *,
    in_pixels: int = 0,
    kind: str = "",
    manifest: str = "",
    app: str | None = None,
    max_price: dict[str, Any] | None = None,
    capabilities: bytes | None = None,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """JSON of Go's RemotePaymentRequest (empty State/Sig are null, empty strings are kept)."""
    raw = (
        orchestrator.SerializeToString()
        if isinstance(orchestrator, pb.OrchestratorInfo)
        else orchestrator
    )
    body: dict[str, Any] = {
        "state": state or {"State": None, "Sig": None},
        "orchestrator": _b64(raw),
        "ManifestID": manifest,
        "inPixels": in_pixels,
        "type": kind,
        "capabilities": _b64(capabilities),
    }
    if app:
        body["app"] = app
    if max_price is not None:
        body["maxPrice"] = max_price
    return body


class SignerUnderTest:
    def __init__(self, signer: Signer, http: httpx.AsyncClient) -> None:
        self.signer = signer
        self.http = http

    async def pay(self, body: dict[str, Any] | bytes, **headers: str) -> httpx.Response:
        if isinstance(body, bytes):
            return await self.http.post("/generate-live-payment", content=body, headers=headers)
        return await self.http.post("/generate-live-payment", json=body, headers=headers)

    def signed_state(
        self, state: dict[str, Any] | bytes, sig: bytes | None = None
    ) -> dict[str, Any]:
        """A state blob signed like upstream's signState (personal_sign over the JSON as is)."""
        raw = state if isinstance(state, bytes) else json.dumps(state).encode()
        sig = self.signer.key.sign_raw(raw) if sig is None else sig
        return {"State": _b64(raw), "Sig": _b64(sig)}


async def _serve(signer: Signer) -> AsyncIterator[SignerUnderTest]:
    transport = httpx.ASGITransport(app=signer.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signer") as http:
        yield SignerUnderTest(signer, http)


@pytest.fixture
async def fid_signer() -> AsyncIterator[SignerUnderTest]:
    async for s in _serve(Signer(discovery_enabled=False)):
        yield s


@pytest.fixture
async def fid_signer_max500() -> AsyncIterator[SignerUnderTest]:
    # BroadcastCfg.SetMaxPrice(500 wei per pixel) in TestGenerateLivePayment_RequestValidationErrors.
    async for s in _serve(Signer(discovery_enabled=False, max_price_per_unit=500)):
        yield s


def _error(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) == {"error"}, body
    message = body["error"]["message"]
    assert message
    return str(message)


def _expired_auth() -> pb.OrchestratorInfo:
    info = _orch()
    info.auth_token.expiration = int(time.time() - 60)
    return info


def _fixed_max(price: str, currency: str = "wei", unit: str = "fixed") -> dict[str, str]:
    return {"price": price, "currency": currency, "unit": unit}


# go: server/remote_signer_test.go TestGenerateLivePayment_RequestValidationErrors (name, body, status, message)
REQUEST_VALIDATION: list[tuple[str, Any, int, str]] = [
    ("invalid JSON", b"{not-json", 400, "invalid character"),
    ("missing orchestrator blob", go_request(None, in_pixels=1), 400, "missing orchestrator"),
    ("orchestrator blob not protobuf", go_request(b"not-proto", in_pixels=1), 400, "proto:"),
    (
        "missing price info",
        go_request(_orch(price=None), in_pixels=1),
        400,
        "missing or zero priceInfo",
    ),
    (
        "zero price per unit",
        go_request(_orch(price=(0, 1)), in_pixels=1),
        400,
        "missing or zero priceInfo",
    ),
    (
        "zero pixels per unit",
        go_request(_orch(price=(1, 0)), in_pixels=1),
        400,
        "missing or zero priceInfo",
    ),
    (
        "missing ticket params",
        go_request(_orch(ticket_params=False), in_pixels=1),
        400,
        "missing ticketParams in OrchestratorInfo",
    ),
    (
        "missing auth token",
        go_request(_orch(auth=False), in_pixels=1),
        400,
        "remote signer could not check whether to refresh session",
    ),
    ("invalid job type", go_request(_orch(), in_pixels=1, kind="bogus"), 400, "invalid job type"),
    ("missing pixels without type", go_request(_orch()), 400, "missing billable unit or job type"),
    (
        "num tickets exceeds limit",
        go_request(_orch(), in_pixels=101),
        400,
        "exceeds maximum of 100",
    ),
    (
        "invalid capabilities protobuf",
        go_request(_orch(), in_pixels=1, kind="lv2v", capabilities=b"not-valid-protobuf"),
        400,
        "cannot parse invalid wire-format data",
    ),
    (
        "orchestrator price exceeds max price",
        go_request(_orch(price=(1000, 1)), in_pixels=1),
        481,
        "orchestrator price",
    ),
    (
        "orchestrator price exceeds request max price",
        go_request(_orch(price=(10, 1)), kind="fixed", max_price=_fixed_max("9")),
        481,
        "request maxPrice",
    ),
    (
        "request max price requires typed payment",
        go_request(_orch(), in_pixels=1, max_price=_fixed_max("1")),
        400,
        "maxPrice requires payment type",
    ),
    (
        "request max price requires wei",
        go_request(_orch(), in_pixels=1, kind="fixed", max_price=_fixed_max("1", currency="usd")),
        400,
        "maxPrice.currency must be wei",
    ),
    (
        "request max price unit must match type",
        go_request(_orch(), in_pixels=1, kind="live", max_price=_fixed_max("1")),
        400,
        "maxPrice.unit must be seconds",
    ),
    (
        "request max price must be positive",
        go_request(_orch(), in_pixels=1, kind="fixed", max_price=_fixed_max("0")),
        400,
        "maxPrice.price must be a positive decimal",
    ),
    (
        "fixed orchestrator price uses existing max price check",
        go_request(_orch(price=(1000, 1)), manifest="fixed-manifest", kind="fixed"),
        481,
        "orchestrator price",
    ),
    # "orchestrator price exceeds per-capability max price": per-capability signer ceilings are not
    # emulated (docs/fidelity.md).
]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [row[1:] for row in REQUEST_VALIDATION],
    ids=[row[0] for row in REQUEST_VALIDATION],
)
async def test_request_validation_errors(
    fid_signer_max500: SignerUnderTest, body: Any, status: int, message: str
) -> None:
    # go: server/remote_signer_test.go TestGenerateLivePayment_RequestValidationErrors
    r = await fid_signer_max500.pay(body)
    assert r.status_code == status, r.text
    assert message in _error(r)


async def test_expired_auth_token_is_480_with_the_orchestrator_url(
    fid_signer_max500: SignerUnderTest,
) -> None:
    # go: server/remote_signer_test.go TestGenerateLivePayment_RequestValidationErrors
    # ("auth token expired triggers 480"); server/broadcast.go:1637-1644 (last 10 % of 30 min also 480)
    for info in (_expired_auth(), _orch(expires_in=170)):
        r = await fid_signer_max500.pay(go_request(info, in_pixels=1))
        assert r.status_code == 480
        assert "refresh session for remote signer" in _error(r)
        assert r.headers["Livepeer-Orchestrator-URL"] == "http://orch.example"
    assert (
        await fid_signer_max500.pay(go_request(_orch(expires_in=190), in_pixels=1))
    ).status_code == 200


@pytest.mark.parametrize(
    ("max_price", "kind", "ok", "message"),
    [
        ({"price": 101.2, "currency": "wei", "unit": "seconds"}, "live", True, ""),
        ({"price": 7, "currency": "wei", "unit": "720p-pixel-seconds"}, "lv2v", True, ""),
        ({"price": 3, "currency": "wei", "unit": "fixed"}, "fixed", True, ""),
        ({"price": "wat", "currency": "wei", "unit": "fixed"}, "fixed", False, "positive decimal"),
        ({"price": -1, "currency": "wei", "unit": "fixed"}, "fixed", False, "positive decimal"),
        ({"price": 1, "unit": "fixed"}, "fixed", False, "currency must be wei"),
    ],
    ids=["live decimal", "lv2v", "fixed", "malformed price", "negative price", "missing currency"],
)
async def test_parse_max_price(
    fid_signer: SignerUnderTest, max_price: dict[str, Any], kind: str, ok: bool, message: str
) -> None:
    # go: server/remote_signer_test.go TestParseRemotePaymentMaxPrice (through the handler; price 1 wei)
    r = await fid_signer.pay(go_request(_orch(ev=10**9), kind=kind, max_price=max_price))
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 400
        assert message in _error(r)


def _state(address: bytes, **fields: Any) -> dict[str, Any]:
    """Go's json.Marshal(RemotePaymentState{...}): every field present, zero values included."""
    state: dict[str, Any] = {
        "StateID": "state",
        "PMSessionID": "",
        "LastUpdate": "0001-01-01T00:00:00Z",
        "OrchestratorAddress": "0x" + address.hex(),
        "App": "",
        "AuthExpiry": 0,
        "SenderNonce": 0,
        "Balance": "",
        "InitialPricePerUnit": 0,
        "InitialPixelsPerUnit": 0,
        "Type": "",
        "SequenceNumber": 0,
        "AuthID": "",
    }
    state.update(fields)
    return state


ORCH_ADDR = bytes.fromhex("5a" * 20)


async def test_state_validation_errors(fid_signer: SignerUnderTest) -> None:
    # go: server/remote_signer_test.go TestGenerateLivePayment_StateValidationErrors
    s = fid_signer
    base = _orch(address=ORCH_ADDR)
    rows: list[tuple[str, dict[str, Any], dict[str, Any], int, str]] = [
        (
            "missing manifest id with state",
            s.signed_state(_state(ORCH_ADDR, InitialPricePerUnit=1, InitialPixelsPerUnit=1)),
            {"manifest": ""},
            400,
            "missing manifestID",
        ),
        (
            "invalid state signature",
            s.signed_state(b'{"stateID":"state","orchestratorAddress":"0x1"}', sig=b"bad"),
            {},
            400,
            "invalid sig",
        ),
        ("invalid state json", s.signed_state(b"not-json"), {}, 400, "invalid state"),
        (
            "app mismatch",
            s.signed_state(
                _state(
                    ORCH_ADDR,
                    App="live-video-to-video/app-a",
                    InitialPricePerUnit=1,
                    InitialPixelsPerUnit=1,
                )
            ),
            {"app": "live-video-to-video/app-b"},
            400,
            "app mismatch",
        ),
        (
            "job type mismatch",
            s.signed_state(
                _state(ORCH_ADDR, Type="lv2v", InitialPricePerUnit=1, InitialPixelsPerUnit=1)
            ),
            {"kind": "live"},
            400,
            "job type mismatch",
        ),
        (
            "orchestrator address mismatch",
            s.signed_state(_state(b"\x00" * 19 + b"\x01", InitialPixelsPerUnit=1)),
            {"orchestrator": _orch(address=b"\x00" * 19 + b"\x02")},
            400,
            "orchestratorAddress mismatch",
        ),
        (
            "orchestrator price exceeds initial session price",
            s.signed_state(_state(ORCH_ADDR, InitialPricePerUnit=100, InitialPixelsPerUnit=1)),
            {"orchestrator": _orch(address=ORCH_ADDR, price=(150, 1))},
            481,
            "initial session price ceiling",
        ),
        (
            "zero tickets returns 482",
            s.signed_state(
                _state(ORCH_ADDR, Balance="1000", InitialPricePerUnit=1, InitialPixelsPerUnit=1)
            ),
            {},
            482,
            "no tickets",
        ),
    ]
    for name, state, overrides, status, message in rows:
        body = go_request(
            overrides.get("orchestrator", base),
            in_pixels=1,
            manifest=overrides.get("manifest", "manifest"),
            app=overrides.get("app"),
            kind=overrides.get("kind", ""),
            state=state,
        )
        r = await s.pay(body)
        assert r.status_code == status, (name, r.text)
        assert message in _error(r), name


def _parts(r: httpx.Response) -> tuple[dict[str, Any], pb.Payment, pb.SegData, dict[str, Any]]:
    assert r.status_code == 200, r.text
    body = r.json()
    payment = pb.Payment()
    payment.ParseFromString(base64.b64decode(body["payment"]))
    seg = pb.SegData()
    seg.ParseFromString(base64.b64decode(body["segCreds"]))
    state = json.loads(base64.b64decode(body["state"]["State"]))
    return body, payment, seg, state


async def test_lv2v_succeeds_fee_at_initial_price() -> None:
    # go: server/remote_signer_test.go TestGenerateLivePayment_LV2V_Succeeds (global max 200, EV 35)
    key = EthKey.generate()
    async for s in _serve(Signer(discovery_enabled=False, max_price_per_unit=200, key=key)):
        info = _orch(address=ORCH_ADDR, price=(150, 175), ev=35)
        first = await s.pay(go_request(info, manifest="lv2v-manifest", in_pixels=1000))
        _, payment, seg, state = _parts(first)
        assert state["StateID"]
        assert state["OrchestratorAddress"] == "0x" + ORCH_ADDR.hex()
        assert state["SequenceNumber"] == 0
        assert not state["LastUpdate"].startswith("0001-")
        fee = Fraction(150, 175) * 1000  # 6000/7
        tickets = len(payment.ticket_sender_params)
        assert tickets == 25  # ceil((6000/7) / 35)
        assert Fraction(state["Balance"]) == tickets * 35 - fee == Fraction(125, 7)
        assert seg.manifestId == b"lv2v-manifest"
        # A lower challenge price: tickets carry the new expected price, the fee stays at the initial one.
        cheaper = _orch(address=ORCH_ADDR, price=(150 * 3 // 4, 175), ev=35)
        _, payment2, _, state2 = _parts(
            await s.pay(
                go_request(
                    cheaper,
                    manifest="lv2v-manifest",
                    in_pixels=2500,
                    state=first.json()["state"],
                )
            )
        )
        assert (payment2.expected_price.pricePerUnit, payment2.expected_price.pixelsPerUnit) == (
            112,
            175,
        )
        assert state2["SequenceNumber"] == 1
        old = Fraction(125, 7)
        fee2 = Fraction(150, 175) * 2500  # 15000/7 at the initial price
        tickets2 = len(payment2.ticket_sender_params)
        assert tickets2 == 61  # ceil((15000/7 - 125/7) / 35)
        assert Fraction(state2["Balance"]) == old + tickets2 * 35 - fee2 == 10
        # The configured ceiling (200) still applies to a new session: 300 wei is refused.
        r = await s.pay(go_request(_orch(address=ORCH_ADDR, price=(300, 1), ev=35), in_pixels=1))
        assert r.status_code == 481
        assert "configured maximum price" in _error(r)


async def test_live_bills_elapsed_seconds(fid_signer: SignerUnderTest) -> None:
    # go: server/remote_signer_test.go TestGenerateLivePayment_LiveBillsElapsedSeconds (price 3 wei/s, EV 35)
    s = fid_signer
    info = _orch(address=ORCH_ADDR, price=(3, 1), ev=35)
    body, payment, _, state = _parts(await s.pay(go_request(info, kind="live")))
    assert len(payment.ticket_sender_params) == 1
    assert (state["Type"], state["SequenceNumber"]) == ("live", 0)
    assert Fraction(state["Balance"]) == 5  # 10 s minimum * 3 = 30; 35 - 30
    # Go's synctest sleeps 12 s; here the signed state is moved 11.5 s back (ceil(11.5 + ε) = 12 s).
    moved = json.loads(base64.b64decode(body["state"]["State"]))
    then = time.time() - 11.5
    moved["LastUpdate"] = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(then)) + f"{then % 1:.6f}"[1:] + "Z"
    )
    _, payment2, _, state2 = _parts(
        await s.pay(
            go_request(info, kind="live", manifest="live-manifest", state=s.signed_state(moved))
        )
    )
    assert len(payment2.ticket_sender_params) == 1
    assert (state2["Type"], state2["SequenceNumber"]) == ("live", 1)
    assert Fraction(state2["Balance"]) == 4  # 12 s * 3 = 36; 5 + 35 - 36


async def test_fixed_bills_one_unit_and_allows_state(fid_signer: SignerUnderTest) -> None:
    # go: server/remote_signer_test.go TestGenerateLivePayment_FixedBillsOneUnitAndAllowsState (EV 3)
    s = fid_signer
    info = _orch(address=ORCH_ADDR, price=(3, 1), ev=3)

    def request(manifest: str, state: dict[str, Any] | None) -> dict[str, Any]:
        return go_request(
            info,
            manifest=manifest,
            in_pixels=1_000_000,
            kind="fixed",
            max_price={"price": 4, "currency": "wei", "unit": "fixed"},
            state=state,
        )

    first, p1, _, st1 = _parts(await s.pay(request("", None)))  # a first call may omit the manifest
    assert len(p1.ticket_sender_params) == 1
    assert (p1.expected_price.pricePerUnit, p1.expected_price.pixelsPerUnit) == (3, 1)
    assert (st1["Type"], st1["SequenceNumber"], st1["Balance"]) == ("fixed", 0, "0")
    _, p2, _, st2 = _parts(await s.pay(request("fixed-manifest", first["state"])))
    assert len(p2.ticket_sender_params) == 1
    assert p2.ticket_sender_params[0].sender_nonce != p1.ticket_sender_params[0].sender_nonce
    assert (st2["Type"], st2["SequenceNumber"], st2["Balance"]) == ("fixed", 1, "0")


async def test_lv2v_first_call_prepays_60_seconds(fid_signer: SignerUnderTest) -> None:
    # go: server/remote_signer.go:544-552 (no LastUpdate: 60 s of 1280x720x30 pixels, int64-truncated)
    info = _orch(address=ORCH_ADDR, price=(1, 1000), ev=10**6)
    _, payment, _, state = _parts(await fid_signer.pay(go_request(info, kind="lv2v")))
    fee = Fraction(1, 1000) * 1280 * 720 * 30 * 60  # 1658880 wei
    assert len(payment.ticket_sender_params) == 2  # ceil(1658880 / 1e6)
    assert Fraction(state["Balance"]) == 2 * 10**6 - fee


async def test_auth_id_must_not_change_within_a_state_chain(fid_signer: SignerUnderTest) -> None:
    # go: server/remote_signer.go:695-706 (Signer-Auth-Id kept in state; a different one later is 500)
    info = _orch(address=ORCH_ADDR, price=(1, 1), ev=1000)
    first = await fid_signer.pay(go_request(info, kind="fixed"), **{"Signer-Auth-Id": "a"})
    _, _, _, state = _parts(first)
    assert state["AuthID"] == "a"
    again = go_request(info, kind="fixed", manifest="m", state=first.json()["state"])
    changed = await fid_signer.pay(again, **{"Signer-Auth-Id": "b"})
    assert changed.status_code == 500
    assert _error(changed) == "Internal Server Error"  # handlers.go masks 500 messages


async def test_state_signature_is_personal_sign_of_the_raw_json(
    fid_signer: SignerUnderTest,
) -> None:
    # go: server/remote_signer.go:276-298 (signState / verifyStateSignature over the JSON bytes as they are)
    from eth_account import Account
    from eth_account.messages import encode_defunct

    body, _, _, _ = _parts(await fid_signer.pay(go_request(_orch(ev=5), kind="fixed")))
    raw = base64.b64decode(body["state"]["State"])
    sig = base64.b64decode(body["state"]["Sig"])
    assert (
        Account.recover_message(encode_defunct(primitive=raw), signature=sig)
        == fid_signer.signer.key.address
    )
