from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from livepeer.client import Gateway, NoOrchestratorError, SignerError
from livepeer.client._proto import lp_rpc_pb2 as pb

Start = Callable[[int], list[Any]]


def test_onchain_byoc_pays_when_balance_is_low(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.balance, orch.onchain = 2, 0, True
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
        gw.run("text-reversal", input={"text": "y"})
    # The second call sees Livepeer-Balance 99 < 120 s x 2 wei: pays again, continuing the state chain.
    assert len(fake_signer.payment_bodies) == 2
    first, second = fake_signer.payment_bodies
    assert "state" not in first
    assert second["state"]["State"] == base64.b64encode(b"s1").decode()
    assert first["ManifestID"] == second["ManifestID"]
    info = pb.OrchestratorInfo()
    info.ParseFromString(base64.b64decode(first["orchestrator"]))
    assert info.price_info.pricePerUnit == 2
    assert info.transcoder == orch.url
    assert info.auth_token.expiration > 0
    assert orch.payments == [
        base64.b64encode(b"pay-1").decode(),
        base64.b64encode(b"pay-2").decode(),
    ]
    job = orch.jobs[0]
    assert job["sig"] == "0x" + "22" * 65  # from /sign-byoc-job
    assert fake_signer.info_calls == 1


def test_no_payment_while_balance_covers_threshold(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    orch.price, orch.balance = 1, 10_000
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert fake_signer.payment_bodies == []
    assert orch.payments == []


def test_low_balance_repays_once_then_fails_over(fake_orchs: Start, fake_signer: Any) -> None:
    stingy, good = fake_orchs(2)
    stingy.price = good.price = 1
    stingy.balance = good.balance = 10_000  # looks funded, so no payment up front
    stingy.low_balance_until_paid = True
    good.price = 2  # tried second
    stingy.request_status = 200
    with Gateway(orch_url=[stingy.url, good.url], signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    # stingy: unpaid attempt -> 400 Insufficient balance -> paid retry succeeds
    assert stingy.request_calls == 2
    assert len(stingy.payments) == 1
    assert good.request_calls == 0


def test_signer_482_skips_payment(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    orch.price = 1
    fake_signer.payment_statuses = [482]
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert orch.payments == []
    assert orch.request_calls == 1


def test_signer_481_moves_to_next_orchestrator(fake_orchs: Start, fake_signer: Any) -> None:
    a, b = fake_orchs(2)
    a.price, b.price = 1, 2
    fake_signer.payment_statuses = [481]
    with Gateway(orch_url=[a.url, b.url], signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert (a.request_calls, b.request_calls) == (0, 1)


def test_signer_480_refreshes_and_retries(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    orch.price = 1
    fake_signer.payment_statuses = [480, 480]
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert orch.token_calls == 3  # first probe + one re-probe per 480
    assert len(fake_signer.payment_bodies) == 3
    assert orch.request_calls == 1


def test_signer_errors_surface(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)
    orch.price = 1
    fake_signer.payment_statuses = [400]
    gw = Gateway(orch_url=orch.url, signer_url=fake_signer.url)
    with gw, pytest.raises(SignerError) as info:
        gw.run("text-reversal", input={"text": "x"})
    assert info.value.status_code == 400
    assert "status 400" in str(info.value)


def test_signer_without_byoc_signing_falls_back_to_offchain(
    fake_orchs: Start, fake_signer: Any
) -> None:
    (orch,) = fake_orchs(1)
    orch.onchain = True
    fake_signer.byoc_sign = False
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
        gw.run("text-reversal", input={"text": "y"})
    assert fake_signer.sign_calls == 1  # 404 remembered
    assert orch.jobs[0]["sig"] == "0x"
    assert orch.jobs[0]["sender"] == "0x" + "Ab" * 20


def test_local_key_signs_jobs_verifiably(fake_orchs: Start) -> None:
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_utils.crypto import keccak

    (orch,) = fake_orchs(1)
    orch.onchain = True
    key = "0x" + "4c" * 32
    with Gateway(orch_url=orch.url, private_key=key) as gw:
        gw.run("text-reversal", input={"text": "x"})
    job = orch.jobs[0]
    addr = Account.from_key(key).address
    assert job["sender"] == addr
    msg = encode_defunct(primitive=keccak(text=job["request"] + job["parameters"]))
    assert Account.recover_message(msg, signature=job["sig"]) == addr


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


def test_offchain_orchestrator_jobs_are_not_signed(fake_orchs: Start, fake_signer: Any) -> None:
    (orch,) = fake_orchs(1)  # no ticket params in its JobToken: signatures are never checked
    with Gateway(orch_url=orch.url, signer_url=fake_signer.url) as gw:
        gw.run("text-reversal", input={"text": "x"})
    assert fake_signer.sign_calls == 0
    assert orch.jobs[0]["sig"] == "0x"


def test_debug_logs_redact_secrets(
    fake_orchs: Start, fake_signer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    (orch,) = fake_orchs(1)
    orch.price, orch.onchain = 1, True
    caplog.set_level(logging.DEBUG, logger="livepeer.client")
    headers = {"Authorization": "Bearer sup3rsecret", "X-Api-Key": "k3y-secret"}
    with Gateway(
        orch_url=orch.url, signer_url=fake_signer.url + "/?apikey=q-secret", signer_headers=headers
    ) as gw:
        gw.run("text-reversal", input={"text": "x"})
    text = caplog.text
    assert "POST" in text  # requests were logged...
    for secret in ("sup3rsecret", "k3y-secret", "q-secret", "pay-1"):
        # ...without credentials or payment tickets, raw or base64-encoded (headers carry base64)
        encoded = base64.b64encode(secret.encode()).decode()
        for form in (secret, encoded, encoded.rstrip("=")):
            assert form not in text
