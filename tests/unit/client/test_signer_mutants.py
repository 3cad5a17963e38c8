"""The signer client's remaining branches, pinned for mutation testing (docs/testing.md, "Mutation testing").

Remote signer calls go to the standard-library loopback server of ``test_error_paths.py`` through the
Gateway's own I/O; the BYOC ticket builder (``Signer.byoc_payment``) and ``ticket_params_from_token`` are
pure and are called directly, their payments decoded and their ledger entries compared exactly.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from livepeer.client import (
    BudgetExceededError,
    Gateway,
    PaymentError,
    SignerError,
    SignerSkipError,
)
from livepeer.client._ops import Call
from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.client._signer import Identity, PaymentTokens, Signer, ticket_params_from_token
from livepeer.client._spend import Charge, Spend
from livepeer.client._tickets import ticket_ev

from .test_error_paths import Loopback, _serve, run

KEY = "0x" + "4c" * 32
FACE = (1000).to_bytes(2, "big")
WIN = (((1 << 256) - 1) // 10).to_bytes(32, "big")
EV = ticket_ev(1000, int.from_bytes(WIN, "big"))  # just under 100 wei per ticket


@pytest.fixture
def srv() -> Iterator[Loopback]:
    yield from _serve()


def _address(key: str) -> str:
    from eth_account import Account

    return str(Account.from_key(key).address)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _token(rand: int = 1, *, face: bytes = FACE, **extra: object) -> dict[str, Any]:
    tp: dict[str, Any] = {
        "recipient": _b64(b"\x02" * 20),
        "win_prob": _b64(WIN),
        "recipient_rand_hash": _b64(rand.to_bytes(32, "big")),
        "seed": _b64(b"\x07"),
        "expiration_block": _b64((1040).to_bytes(2, "big")),
        "expiration_params": {"creation_round": 5},
    }
    if face:
        tp["face_value"] = _b64(face)
    return {"ticket_params": tp, **extra}


def _decode(header: str | None) -> pb.Payment:
    assert header is not None
    payment = pb.Payment()
    payment.ParseFromString(base64.b64decode(header))
    return payment


def _nonces(header: str | None) -> list[int]:
    return [t.sender_nonce for t in _decode(header).ticket_sender_params]


# -- identity ---------------------------------------------------------------------------------------


def test_identity_and_payment_tokens_are_immutable() -> None:
    ident = Identity("0x" + "ab" * 20, "0x")
    tokens = PaymentTokens("p", "s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ident.address = "0x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tokens.payment = "q"  # type: ignore[misc]
    assert {ident: 1}[Identity("0x" + "ab" * 20, "0x")] == 1  # frozen dataclasses hash by value


def test_a_plain_signer_error_body_is_cut_at_300_characters(srv: Loopback) -> None:
    srv.queue("/sign-orchestrator-info", (500, b"x" * 1000))
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerError) as info:
        run(Signer(srv.url, {}).identity(), gw)
    assert str(info.value) == "signer /sign-orchestrator-info failed with 500: " + "x" * 300 + "…"


def test_an_identity_482_is_a_skip_error(srv: Loopback) -> None:
    srv.json("/sign-orchestrator-info", {"error": {"message": "skip"}}, status=482)
    with Gateway(orch_url=srv.url) as gw, pytest.raises(SignerError) as info:
        run(Signer(srv.url, {}).identity(), gw)
    assert type(info.value) is SignerSkipError
    assert info.value.status_code == 482
    assert str(info.value) == "signer /sign-orchestrator-info failed with 482: skip"


def test_a_local_key_next_to_a_remote_signer_signs_byoc_jobs(srv: Loopback) -> None:
    remote = {"address": "0x" + "ab" * 20, "signature": "0x" + "11" * 65}
    srv.json("/sign-orchestrator-info", remote)
    with Gateway(orch_url=srv.url) as gw:
        ident = run(Signer(srv.url, {}, private_key=KEY).identity(), gw)
    assert (ident.address, ident.signature) == (remote["address"], remote["signature"])
    assert ident.job_key is not None
    assert ident.job_key.address == _address(KEY)
    assert ident.for_byoc() is ident.job_key


def test_the_local_key_memoizes_at_most_64_job_signatures() -> None:
    key = Signer(None, {}, private_key=KEY)._key
    assert key is not None
    key._signed.update({f"text-{i}": "0x" for i in range(63)})
    first = key.personal_sign_hash("a")
    assert len(key._signed) == 64
    assert key._signed["a"] == first
    key.personal_sign_hash("b")
    assert len(key._signed) == 64
    assert "b" not in key._signed


# -- BYOC tickets -----------------------------------------------------------------------------------


def test_byoc_payment_charges_its_tickets_to_the_ledger() -> None:
    s = Signer(None, {}, private_key=KEY)
    # pixelsPerUnit 0 counts as 1: 2 wei x 120 s / 100 wei EV = 3 tickets.
    header = s.byoc_payment(_token(), price=(2, 0), seconds=120, orchestrator="https://o")
    assert _nonces(header) == [1, 2, 3]
    assert s.spend.entries == [Charge("", "https://o", 3, 3 * EV, 2, 0, "seconds", None)]


def test_byoc_payment_names_the_token_service_address_without_an_orchestrator() -> None:
    s = Signer(None, {}, private_key=KEY)
    s.byoc_payment(_token(1, service_addr="https://svc"), price=(1, 1), seconds=60)
    s.byoc_payment(_token(2), price=(1, 1), seconds=60)
    assert [(c.orchestrator, c.tickets, c.expected) for c in s.spend.entries] == [
        ("https://svc", 1, EV),
        ("", 1, EV),
    ]


def test_one_ticket_is_a_payment_and_nonces_continue_per_rand_hash() -> None:
    s = Signer(None, {}, private_key=KEY)
    # 1 wei x 60 s / 100 wei EV = 0.6: one ticket (first == last nonce).
    assert _nonces(s.byoc_payment(_token(), price=(1, 1), seconds=60)) == [1]
    assert _nonces(s.byoc_payment(_token(), price=(1, 1), seconds=60)) == [2]


def test_a_token_worth_nothing_is_no_payment() -> None:
    s = Signer(None, {}, private_key=KEY)
    assert s.byoc_payment(_token(face=b""), price=(5, 1), seconds=120) is None
    assert s.spend.entries == []


def test_the_nonce_table_forgets_the_oldest_rand_hash_past_4096() -> None:
    s = Signer(None, {}, private_key=KEY)
    s.byoc_payment(_token(1), price=(1, 1), seconds=60)  # rand hash 1: nonce 1
    s.byoc_payment(_token(2), price=(1, 1), seconds=60)  # rand hash 2: nonce 1
    # 4093 more rand hashes (not paid here): 4095 entries, hash 1 the oldest.
    s._nonces.update({(1000 + i).to_bytes(32, "big"): 1 for i in range(4093)})
    s.byoc_payment(_token(3), price=(1, 1), seconds=60)  # 4096 entries: nothing forgotten
    assert _nonces(s.byoc_payment(_token(1), price=(1, 1), seconds=60)) == [2]
    # Paying again does not make hash 1 younger: the 4097th rand hash pushes it out.
    s.byoc_payment(_token(4), price=(1, 1), seconds=60)
    assert _nonces(s.byoc_payment(_token(1), price=(1, 1), seconds=60)) == [1]


def test_ticket_params_from_a_job_token() -> None:
    block = b"\x09" * 32
    token = _token()
    token["ticket_params"]["expiration_params"] = {"creation_round_block_hash": _b64(block)}
    params = ticket_params_from_token(token)
    assert params is not None
    assert params.expiration_params.creation_round == 0
    assert params.expiration_params.creation_round_block_hash == block
    assert params.face_value == FACE
    assert params.recipient == b"\x02" * 20


@pytest.mark.parametrize(
    "bad",
    [
        "not a mapping",
        {"recipient": _b64(b"\x02" * 20) + "!"},  # non-base64 characters are refused, not skipped
        {"expiration_params": {"creation_round_block_hash": "CQkJ!"}},
    ],
)
def test_unusable_ticket_params_are_none(bad: object) -> None:
    assert ticket_params_from_token({"ticket_params": bad}) is None


# -- remote payments and the ledger -----------------------------------------------------------------


def _signed_payment(tickets: int, price: tuple[int, int] | None = (7, 3)) -> bytes:
    payment = pb.Payment()
    payment.ticket_params.face_value = FACE
    payment.ticket_params.win_prob = WIN
    for n in range(tickets):
        payment.ticket_sender_params.add(sender_nonce=n + 1, sig=b"s")
    if price is not None:
        payment.expected_price.pricePerUnit, payment.expected_price.pixelsPerUnit = price
    body = {"payment": _b64(payment.SerializeToString()), "segCreds": "c", "state": {"S": 1}}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("billing", "unit"),
    [(None, "pixels"), ("lv2v", "720p-pixel-seconds"), ("live", "seconds"), ("fixed", "fixed")],
)
def test_a_signer_payment_is_charged_with_its_unit(
    srv: Loopback, billing: str | None, unit: str
) -> None:
    srv.queue("/generate-live-payment", (200, _signed_payment(2)))
    s = Signer(srv.url, {})
    with Gateway(orch_url=srv.url) as gw:
        tokens = run(s.payment(("https://o", "cap"), b"i", billing=billing), gw)
    assert tokens is not None
    assert tokens.seg_creds == "c"
    assert s.spend.entries == [Charge("cap", "https://o", 2, 2 * EV, 7, 3, unit, None)]


def test_a_signer_payment_over_budget_is_refused_and_its_chain_dropped(srv: Loopback) -> None:
    srv.queue("/generate-live-payment", (200, _signed_payment(2)))
    s = Signer(srv.url, {})
    s.spend = Spend(max_spend=150)
    with Gateway(orch_url=srv.url) as gw, pytest.raises(BudgetExceededError):
        run(s.payment(("https://o", "cap"), b"i", billing="lv2v"), gw)
    assert s.states == {}
    assert s.spend.entries == []


def test_an_unreadable_signer_payment_is_sent_uncounted_without_a_budget(srv: Loopback) -> None:
    srv.queue("/generate-live-payment", (200, b'{"payment": "p!", "state": {"S": 1}}'))
    srv.queue("/generate-live-payment", (200, b'{"payment": "p!"}'))
    s = Signer(srv.url, {})
    with Gateway(orch_url=srv.url) as gw:
        tokens = run(s.payment(("https://o", "cap"), b"i", billing="lv2v"), gw)
        assert tokens is not None
        assert tokens.payment == "p!"
        assert s.states[("https://o", "cap")].state == {"S": 1}
        s.spend = Spend(max_spend_per_call=10**18)
        with pytest.raises(PaymentError) as info:
            run(s.payment(("https://o", "cap"), b"i", billing="lv2v"), gw)
    assert "not a valid Payment message" in str(info.value)
    assert s.states == {}  # the chain counted credit that is never delivered
    assert s.spend.entries == []


def test_pay_refreshing_passes_every_payment_field(srv: Loopback) -> None:
    srv.queue("/generate-live-payment", (200, b'{"payment": "p"}'))
    s = Signer(srv.url, {})

    def refresh() -> Any:
        raise AssertionError("no 480 here")
        yield

    with Gateway(orch_url=srv.url) as gw:
        tokens, info = run(
            s.pay_refreshing(
                ("o", "c"),
                b"\x01",
                refresh,
                billing=None,
                manifest_id="m",
                app="a",
                in_pixels=9,
                max_price={"pricePerUnit": 1},
                capabilities=b"\x02",
            ),
            gw,
        )
    assert (tokens.payment, info) == ("p", b"\x01")
    assert srv.seen[0].json() == {
        "orchestrator": "AQ==",
        "ManifestID": "m",
        "app": "a",
        "inPixels": 9,
        "maxPrice": {"pricePerUnit": 1},
        "capabilities": "Ag==",
    }


def test_a_chain_is_paid_under_the_manifest_id_each_payment_names(srv: Loopback) -> None:
    # An LV2V chain starts under the stream id, then pays under the orchestrator's manifest_id, the
    # account its /payment credits (segment_rpc.go:260); a payment naming none keeps the last one.
    for _ in range(3):
        srv.queue("/generate-live-payment", (200, b'{"payment": "p", "state": {"State": "s"}}'))
    s = Signer(srv.url, {})
    with Gateway(orch_url=srv.url) as gw:
        for manifest in ("stream", "orch-mid", None):
            run(s.payment(("o", "c"), b"\x01", billing="lv2v", manifest_id=manifest), gw)
    assert [seen.json()["ManifestID"] for seen in srv.seen] == ["stream", "orch-mid", "orch-mid"]


def test_forget_identity_drops_only_this_signers_cached_answer() -> None:
    from livepeer.client import _signer

    mine = Identity("0x" + "11" * 20, "0x" + "22" * 65)
    other = Identity("0x" + "33" * 20, "0x" + "44" * 65)
    _signer._identity_cache.update(
        {("https://s", (("a", "1"),)): mine, ("https://s", ()): other, ("https://t", ()): other}
    )
    Signer(None, {}).forget_identity()  # no remote signer: nothing to drop
    assert len(_signer._identity_cache) == 3
    Signer("https://s", {"a": "1"}).forget_identity()
    assert set(_signer._identity_cache) == {("https://s", ()), ("https://t", ())}


def test_a_failed_identity_fetch_leaves_no_flight_behind(srv: Loopback) -> None:
    """Ops stepped by hand: after the leader failed, the next caller leads (a Call), it does not wait."""
    srv.queue("/sign-orchestrator-info", (500, b"down"))
    srv.json(
        "/sign-orchestrator-info", {"address": "0x" + "ab" * 20, "signature": "0x" + "11" * 65}
    )
    with Gateway(orch_url=srv.url) as gw:
        io = gw._dispatch.sync_io()
        leader = Signer(srv.url, {}).identity()
        first = next(leader)
        with pytest.raises(SignerError, match="failed with 500"):
            leader.send(io.run(first))
        again = Signer(srv.url, {}).identity()
        step = next(again)
        assert isinstance(step, Call)
        with pytest.raises(StopIteration) as done:
            again.send(io.run(step))
    assert done.value.value.address == "0x" + "ab" * 20
