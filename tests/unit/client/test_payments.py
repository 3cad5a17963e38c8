"""BYOC signatures and payments through the public API, against a fake orchestrator (D-byoc-1).

The fake records what arrives; the real checks (signature recovery, ticket verification, credit) are in
tests/devnet/test_byoc.py and tests/fidelity/test_byoc_vectors.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from livepeer.client import APIStatusError, ConfigError, Gateway, NoOrchestratorError
from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.client._tickets import Ticket, ticket_hash

Start = Callable[[int], list[Any]]
KEY = "0x" + "4c" * 32


def _address(key: str) -> str:
    from eth_account import Account

    return str(Account.from_key(key).address)


def _recover_digest(digest: bytes, sig: bytes) -> str:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    return str(Account.recover_message(encode_defunct(primitive=digest), signature=sig))


def _job_signer(job: dict[str, Any]) -> str:
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_utils.crypto import keccak

    msg = encode_defunct(primitive=keccak(text=job["request"] + job["parameters"]))
    return str(Account.recover_message(msg, signature=job["sig"]))


def _payment(header: str) -> pb.Payment:
    payment = pb.Payment()
    payment.ParseFromString(base64.b64decode(header))
    return payment


def test_local_key_signs_job_and_tickets_so_the_job_account_is_paid(
    fake_orchs: Start, fake_signer: Any
) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.balance, orch.onchain = 2, 0, True
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url, private_key=KEY) as gw:
        gw.run("text-reversal", input={"text": "x"})
        gw.run("text-reversal", input={"text": "y"})
    me = _address(KEY)
    # The remote signer is not asked for BYOC tickets or job signatures: it could not sign for `me`.
    assert fake_signer.payment_bodies == []
    assert fake_signer.sign_calls == 0
    assert [j["sender"] for j in orch.jobs] == [me, me]
    assert all(_job_signer(j) == me for j in orch.jobs)
    # Livepeer-Balance 99 < 120 s x 2 wei after the first call: both calls pay, from the same token.
    first, second = (_payment(p) for p in orch.payments)
    for payment in (first, second):
        assert payment.sender == bytes.fromhex(me[2:])
        assert (payment.expected_price.pricePerUnit, payment.expected_price.pixelsPerUnit) == (2, 1)
        assert payment.expiration_params.creation_round == 5
        for tsp in payment.ticket_sender_params:
            ticket = Ticket(
                recipient=payment.ticket_params.recipient,
                sender=payment.sender,
                face_value=int.from_bytes(payment.ticket_params.face_value, "big"),
                win_prob=int.from_bytes(payment.ticket_params.win_prob, "big"),
                sender_nonce=tsp.sender_nonce,
                recipient_rand_hash=payment.ticket_params.recipient_rand_hash,
                creation_round=5,
            )
            assert _recover_digest(ticket_hash(ticket), tsp.sig) == me
    # go's count: ceil(2 wei x 120 s / 100 wei EV) = 3 tickets; nonces never repeat for one rand hash.
    nonces = [t.sender_nonce for p in (first, second) for t in p.ticket_sender_params]
    assert nonces == [1, 2, 3, 4, 5, 6]


def test_priced_onchain_byoc_without_a_key_fails_before_any_payment(
    fake_orchs: Start, fake_signer: Any
) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.onchain = 2, True
    gw = Gateway(orch_url=orch.url, signer_url=fake_signer.url)
    with gw, pytest.raises(ConfigError, match="private_key"):
        gw.run("text-reversal", input={"text": "x"})
    assert orch.request_calls == 0
    assert fake_signer.payment_bodies == []
    assert fake_signer.sign_calls == 0


def test_zero_price_onchain_byoc_with_only_a_remote_signer_uses_a_throwaway_key(
    fake_orchs: Start, fake_signer: Any
) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.onchain = 0, True
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    (job,) = orch.jobs
    assert _job_signer(job) == job["sender"]
    assert job["sender"] != "0x" + "Ab" * 20  # not the signer's address: it cannot sign jobs
    assert orch.payments == []
    assert fake_signer.payment_bodies == []


def test_offchain_jobs_and_tokens_carry_an_empty_signature(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)  # offchain: no ticket params; go-livepeer hex-decodes "0x" and fails
    with Gateway(orch_url=orch.url, max_price=10) as gw:  # a price ceiling forces the token probe
        gw.run("text-reversal", input={"text": "x"})
    assert orch.jobs[0]["sig"] == ""
    assert orch.token_headers
    assert all(json.loads(base64.b64decode(h))["sig"] == "" for h in orch.token_headers)


def test_offchain_with_a_key_still_sends_empty_signatures(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    with Gateway(orch_url=orch.url, private_key=KEY) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert orch.jobs[0]["sig"] == ""
    assert orch.jobs[0]["sender"] == _address(KEY)


def test_no_payment_while_balance_covers_threshold(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.balance, orch.onchain = 1, 10_000, True
    with Gateway(orch_url=orch.url, private_key=KEY) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert orch.payments == []


def test_low_balance_repays_once_then_fails_over(fake_orchs: Start) -> None:
    stingy, good = fake_orchs(2)
    for o in (stingy, good):
        o.price, o.balance, o.onchain = 1, 10_000, True  # looks funded: no payment up front
    stingy.low_balance_until_paid = True
    good.price = 2  # tried second
    with Gateway(orch_url=[stingy.url, good.url], private_key=KEY) as gw:
        gw.run("text-reversal", input={"text": "x"})
    # stingy: unpaid attempt -> 400 Insufficient balance -> one paid retry succeeds
    assert stingy.request_calls == 2
    assert len(stingy.payments) == 1
    assert good.request_calls == 0


def test_insufficient_balance_after_the_repay_moves_on_without_paying_again(
    fake_orchs: Start,
) -> None:
    bad, good = fake_orchs(2)
    for o in (bad, good):
        o.price, o.balance, o.onchain = 1, 10_000, True
    good.price = 2
    bad.request_statuses = [400, 400]
    bad.request_body = b"Insufficient balance for request"
    with Gateway(orch_url=[bad.url, good.url], private_key=KEY) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert bad.request_calls == 2
    assert len(bad.payments) == 1
    assert good.request_calls == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [(400, b"Could not verify job creds"), (503, b"No capacity available for capability")],
)
def test_refusals_a_payment_cannot_fix_are_never_repaid(
    fake_orchs: Start, status: int, body: bytes
) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.balance, orch.onchain = 1, 0, True
    orch.request_status, orch.request_body = status, body
    gw = Gateway(orch_url=orch.url, private_key=KEY, max_retries=0)
    with gw, pytest.raises((APIStatusError, NoOrchestratorError)):
        gw.run("text-reversal", input={"text": "x"})
    assert orch.request_calls == 1
    assert (
        len(orch.payments) == 1
    )  # the first call paid (balance 0); nothing more after the refusal


def test_signer_discovery_is_used(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    fake_signer.discovery = [{"address": orch.url, "score": 1, "capabilities": []}]
    with Gateway(signer_url=fake_signer.url) as gw:
        assert gw.run("text-reversal", input={"text": "ab"}) == {"original": "ab", "reversed": "ba"}


def test_discovery_failure_is_reported(fake_signer: Any) -> None:
    gw = Gateway(signer_url=fake_signer.url)
    with gw, pytest.raises(NoOrchestratorError) as info:
        gw.run("text-reversal", input={})
    assert "404" in str(info.value)


def test_debug_logs_redact_secrets(
    fake_orchs: Start, fake_signer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    (orch,) = fake_orchs(1)
    orch.price, orch.onchain = 1, True
    caplog.set_level(logging.DEBUG, logger="livepeer.client")
    headers = {"Authorization": "Bearer sup3rsecret", "X-Api-Key": "k3y-secret"}
    with Gateway(
        orch_url=orch.url,
        signer_url=fake_signer.url + "/?apikey=q-secret",
        signer_headers=headers,
        private_key=KEY,
    ) as gw:
        gw.run("text-reversal", input={"text": "x"})
    text = caplog.text
    assert "POST" in text  # requests were logged...
    for secret in ("sup3rsecret", "k3y-secret", "q-secret", orch.payments[0][:40], KEY[2:]):
        # ...without credentials, payment tickets or the key, raw or base64-encoded (headers carry base64)
        encoded = base64.b64encode(secret.encode()).decode()
        for form in (secret, encoded, encoded.rstrip("=")):
            assert form not in text
