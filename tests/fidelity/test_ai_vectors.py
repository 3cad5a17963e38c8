"""go-livepeer's own test vectors for the AI routes and per-request payments, replayed against the devnet.

Each test names the Go test it comes from (go-livepeer at 176aa415). Go unit tests call one function with a
mock around it; here the same inputs travel through the devnet's HTTP routes (``POST /text-to-image``,
``POST /generate-live-payment``), so where the AI handler's branch order hides a vector (e.g. a missing
sender is refused by ``verifySegCreds`` before ``ProcessPayment`` sees it) the test states what go-livepeer's
``handleAIRequest`` answers instead. Fixtures live here (no conftest changes).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.client._routes import ai_request
from livepeer.devnet import DevnetOptions
from livepeer.devnet._ai import REQUIRED_EV
from livepeer.devnet._signer import _per_request_tickets
from livepeer.devnet._wire import MAX_SENDER_NONCES
from livepeer.devnet.pytest_plugin import RunningDevnet, run_devnet

MODEL = "stabilityai/sdxl-turbo"
LLM_MODEL = "meta-llama/llama-3.1-8B-Instruct"
BODY = {"prompt": "vector", "model_id": MODEL, "width": 8, "height": 8}


@pytest.fixture(scope="module")
def offchain() -> Iterator[RunningDevnet]:
    with run_devnet(DevnetOptions(orchestrators=1)) as net:
        yield net


@pytest.fixture(scope="module")
def onchain() -> Iterator[RunningDevnet]:
    with run_devnet(DevnetOptions(onchain=True, orchestrators=1)) as net:
        yield net


def _orch(net: RunningDevnet) -> Any:
    return net.net.orchestrators[0].orch


def _b64(message: Any) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


def _post(net: RunningDevnet, headers: dict[str, str], body: Any = None) -> httpx.Response:
    with httpx.Client(verify=False, timeout=30) as c:
        return c.post(f"{net.orchestrators[0]}/text-to-image", json=body or BODY, headers=headers)


def _sign(net: RunningDevnet, in_pixels: int = 64, **extra: Any) -> httpx.Response:
    info = _orch(net).orchestrator_info(sender=net.net.signer.key.address_bytes)
    body = {"orchestrator": _b64(info), "ManifestID": f"27_{MODEL}", "inPixels": in_pixels, **extra}
    with httpx.Client(timeout=10) as c:
        return c.post(net.signer + "/generate-live-payment", json=body)


def _paid(net: RunningDevnet) -> tuple[pb.Payment, str]:
    r = _sign(net)
    assert r.status_code == 200, r.text
    data = r.json()
    return pb.Payment.FromString(base64.b64decode(data["payment"])), data["segCreds"]


def _key(net: RunningDevnet, manifest: str = f"27_{MODEL}") -> tuple[str, str]:
    return (net.net.signer.key.address.lower(), manifest)


def _offchain_seg(net: RunningDevnet, **fields: Any) -> str:
    return _b64(pb.SegData(auth_token=_orch(net).tickets.auth_token(), **fields))


# -- server/segment_rpc_test.go -------------------------------------------------------------------------------


def test_ServeSegment_GetPaymentError(offchain: RunningDevnet) -> None:
    """``Livepeer-Payment: foo`` -> 402 mentioning base64 (getPayment, shared by the AI handler)."""
    r = _post(offchain, {"Livepeer-Payment": "foo"})
    assert r.status_code == 402
    assert "base64" in r.text.strip()


def test_ServeSegment_VerifySegCredsError(offchain: RunningDevnet) -> None:
    """Empty payment, ``Livepeer-Segment: foo`` -> 403 ``ErrorSegEncoding``."""
    r = _post(offchain, {"Livepeer-Payment": "", "Livepeer-Segment": "foo"})
    assert r.status_code == 403
    assert r.text.strip() == "ErrorSegEncoding"


@pytest.mark.parametrize(
    ("duration", "status"), [(0, 200), (123, 200), (-1, 403), (5 * 60 * 1000 + 1, 403)]
)
def test_VerifySegCreds_Duration(offchain: RunningDevnet, duration: int, status: int) -> None:
    """Default and regular durations pass; below zero or above common.MaxDuration is ``invalid duration``."""
    r = _post(offchain, {"Livepeer-Segment": _offchain_seg(offchain, duration=duration)})
    assert r.status_code == status, r.text
    if status == 403:
        assert r.text.strip() == "invalid duration"


# -- core/orch_test.go -------------------------------------------------------------------------------------------


def test_ProcessPayment_GivenNoSender_ReturnsError(onchain: RunningDevnet) -> None:
    """ProcessPayment refuses tickets without a sender; on the AI route verifySegCreds (ai_http.go:1388) sees
    the zero sender first and answers 403 ``ErrSegSig``."""
    payment, seg = _paid(onchain)
    payment.ClearField("sender")
    r = _post(onchain, {"Livepeer-Payment": _b64(payment), "Livepeer-Segment": seg})
    assert (r.status_code, r.text) == (403, "ErrSegSig\n")


def test_ProcessPayment_GivenNoTicketParams_ReturnsNil(onchain: RunningDevnet) -> None:
    """No ticket params is no error; the request then lives on existing credit (SufficientBalance, the Go
    gateway's zero-ticket payments): refused below one ticket's EV, served above it."""
    orch = _orch(onchain)
    payment, seg = _paid(onchain)
    payment.ClearField("ticket_params")
    payment.ClearField("ticket_sender_params")
    key = _key(onchain)
    orch.balances.debit(key, orch.balances.get(key))  # zero
    r = _post(onchain, {"Livepeer-Payment": _b64(payment), "Livepeer-Segment": seg})
    assert (r.status_code, r.text) == (400, "Insufficient balance\n")
    orch.balances.credit(key, REQUIRED_EV)
    r = _post(onchain, {"Livepeer-Payment": _b64(payment), "Livepeer-Segment": seg})
    assert r.status_code == 200, r.text
    ppu, ppx = orch.base_price()
    assert orch.balances.get(key) == REQUIRED_EV - Fraction(ppu, ppx) * 8 * 8  # DebitFees


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (pb.PriceInfo(pricePerUnit=500, pixelsPerUnit=0), "pixels per unit is 0"),
        (None, "expected price is nil"),
    ],
)
def test_ProcessPayment_InvalidExpectedPrice(
    onchain: RunningDevnet, price: pb.PriceInfo | None, message: str
) -> None:
    payment, seg = _paid(onchain)
    if price is None:
        payment.ClearField("expected_price")
    else:
        payment.expected_price.CopyFrom(price)
    r = _post(onchain, {"Livepeer-Payment": _b64(payment), "Livepeer-Segment": seg})
    assert r.status_code == 400
    assert r.text == f'invalid expected price sent with payment err="{message}"\n'


def test_ProcessPayment_PaymentError_DoesNotIncreaseCreditBalance(onchain: RunningDevnet) -> None:
    orch = _orch(onchain)
    payment, seg = _paid(onchain)
    headers = {"Livepeer-Payment": _b64(payment), "Livepeer-Segment": seg}
    assert _post(onchain, headers).status_code == 200
    before = orch.balances.get(_key(onchain))
    assert _post(onchain, headers).status_code == 400  # every ticket is a replay now
    assert orch.balances.get(_key(onchain)) == before


def test_DebitFees(onchain: RunningDevnet) -> None:
    """price x outPixels against ``"{capID}_{modelID}"``; for llm outPixels is max_tokens (ai_http.go:1520)."""
    orch = _orch(onchain)
    info = orch.orchestrator_info(sender=onchain.net.signer.key.address_bytes)
    body = {
        "orchestrator": _b64(info),
        "ManifestID": f"33_{LLM_MODEL}",
        "inPixels": 9,
    }
    with httpx.Client(timeout=10) as c:
        data = c.post(onchain.signer + "/generate-live-payment", json=body).json()
    key = _key(onchain, f"33_{LLM_MODEL}")
    before = orch.balances.get(key)
    with httpx.Client(verify=False, timeout=30) as c:
        r = c.post(
            f"{onchain.orchestrators[0]}/llm",
            json={
                "model": LLM_MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 9,
            },
            headers={"Livepeer-Payment": data["payment"], "Livepeer-Segment": data["segCreds"]},
        )
    assert r.status_code == 200, r.text
    ppu, ppx = orch.base_price()
    assert orch.balances.get(key) - before == REQUIRED_EV - Fraction(ppu, ppx) * 9


def test_AuthToken(offchain: RunningDevnet) -> None:
    """A token the orchestrator did not mint (wrong HMAC) is refused: 403 ``invalid auth token``."""
    token = _orch(offchain).tickets.auth_token()
    token.session_id = token.session_id + "x"
    r = _post(offchain, {"Livepeer-Segment": _b64(pb.SegData(auth_token=token))})
    assert (r.status_code, r.text) == (403, "invalid auth token\n")


# -- pm/recipient_test.go ----------------------------------------------------------------------------------------


def test_ReceiveTicket_InvalidSenderNonce(onchain: RunningDevnet) -> None:
    payment, seg = _paid(onchain)
    headers = {"Livepeer-Payment": _b64(payment), "Livepeer-Segment": seg}
    assert _post(onchain, headers).status_code == 200
    r = _post(onchain, headers)
    assert r.status_code == 400
    assert "invalid ticket senderNonce" in r.text


def test_ReceiveTicket_NonceMapFill(onchain: RunningDevnet) -> None:
    """600 nonces per recipientRand, then ``too many values`` (pm/recipient.go:26, :386-389). Sent in batches
    of 100: the devnet's server caps request headers at 16 KiB where Go allows 1 MiB."""
    from livepeer.client._tickets import make_payment

    first, seg = _paid(onchain)
    price = (first.expected_price.pricePerUnit, first.expected_price.pixelsPerUnit)
    key = onchain.net.signer.key
    nonce = 0  # the signer's own payment is never sent, so the orchestrator has seen no nonce yet
    # Real signatures (the orchestrator recovers each one), fresh nonces up to the cap and one past it.
    while nonce <= MAX_SENDER_NONCES:
        batch = range(nonce + 1, min(nonce + 100, MAX_SENDER_NONCES + 1) + 1)
        payment = make_payment(
            first.ticket_params, sender=first.sender, expected_price=price, nonces=batch,
            sign=key.sign_raw,
        )  # fmt: skip
        nonce = batch[-1]
        r = _post(onchain, {"Livepeer-Payment": _b64(payment), "Livepeer-Segment": seg})
        if nonce <= MAX_SENDER_NONCES:
            assert r.status_code == 200, r.text
    assert r.status_code == 400
    assert f"too many values sender=0x{payment.sender.hex()}".lower() in r.text.lower()
    assert f"nonce={MAX_SENDER_NONCES + 1}" in r.text


# -- server/remote_signer_test.go: TestGenerateLivePayment_RequestValidationErrors ---------------------------


def test_GenerateLivePayment_missing_pixels_without_type(onchain: RunningDevnet) -> None:
    r = _sign(onchain, in_pixels=0)
    assert r.status_code == 400
    assert "missing billable unit or job type" in r.json()["error"]["message"]


def test_GenerateLivePayment_num_tickets_exceeds_limit(onchain: RunningDevnet) -> None:
    ppu, ppx = _orch(onchain).base_price()
    pixels = int(101 * REQUIRED_EV * ppx / ppu)  # 101 tickets' worth (the Go vector: EV 1, price 1)
    r = _sign(onchain, in_pixels=pixels)
    assert r.status_code == 400
    assert "exceeds maximum of 100" in r.json()["error"]["message"]


def test_GenerateLivePayment_missing_orchestrator_blob(onchain: RunningDevnet) -> None:
    with httpx.Client(timeout=10) as c:
        r = c.post(onchain.signer + "/generate-live-payment", json={"inPixels": 1})
    assert r.status_code == 400
    assert "missing orchestrator" in r.json()["error"]["message"]


def test_GenerateLivePayment_zero_tickets_returns_482(onchain: RunningDevnet) -> None:
    """A state whose balance covers the fee and one ticket: 482 ``no tickets``."""
    first = _sign(onchain).json()
    signer = onchain.net.signer
    state = json.loads(base64.b64decode(first["state"]["State"]))
    state["Balance"] = str(1000 * REQUIRED_EV)
    raw = json.dumps(state, sort_keys=True).encode()
    forged = {
        "State": base64.b64encode(raw).decode(),
        # signState: personal_sign over the state JSON as is (server/remote_signer.go:276-285).
        "Sig": base64.b64encode(signer.key.sign_raw(raw)).decode(),
    }
    r = _sign(onchain, state=forged)
    assert r.status_code == 482
    assert "no tickets" in r.json()["error"]["message"]


# -- core/accounting_test.go: TestBalance_StageUpdate (with newBalanceUpdate's one-ticket floor) ----------------


@pytest.mark.parametrize(
    ("min_credit", "ev", "existing", "tickets"),
    [
        (Fraction(5), Fraction(1), Fraction(1), 4),  # exact number of tickets covers new credit
        (Fraction(2), Fraction(1), Fraction(1, 4), 2),  # non-exact number of tickets
        (Fraction(2), Fraction(1), Fraction(-5), 7),  # negative existing credit
        (Fraction(2), Fraction(1), Fraction(0), 2),  # no existing credit
        (Fraction(2), Fraction(1), Fraction(2), 0),  # existing credit = minimum credit: none (482)
        (
            Fraction(1),
            Fraction(3),
            Fraction(2),
            1,
        ),  # newBalanceUpdate: the floor is one ticket's EV
    ],
)
def test_Balance_StageUpdate(
    min_credit: Fraction, ev: Fraction, existing: Fraction, tickets: int
) -> None:
    from livepeer.devnet._signer import _SignerError

    if tickets == 0:
        with pytest.raises(_SignerError) as info:
            _per_request_tickets(min_credit, existing, ev)
        assert info.value.status == 482
    else:
        assert _per_request_tickets(min_credit, existing, ev) == tickets


# -- the client's side of the same contract (no Go test: the gateway code it mirrors is cited) -----------------


def test_client_bills_what_handleAIRequest_debits() -> None:
    """server/ai_http.go:1411-1426, :1480-1491, :1514-1520, :1569-1570 for the bodies the client sends."""
    body, model = ai_request.prepare("text-to-image", {"prompt": "p"}, None)
    assert (model, body["width"], body["height"]) == (MODEL, 512, 512)
    assert ai_request.billed_units("text-to-image", body) == 512 * 512
    body, _ = ai_request.prepare("image-to-video", {"image": b""}, None)
    assert ai_request.billed_units("image-to-video", body) == 576 * 1024 * 25
    body, model = ai_request.prepare("llm", {"messages": [{"role": "user", "content": "x"}]}, None)
    assert (model, body["model"], body["max_tokens"]) == (LLM_MODEL, LLM_MODEL, 256)
    assert ai_request.billed_units("llm", body) == 256
    assert ai_request.billed_units("text-to-speech", {"text": "日本"}) == 2000
