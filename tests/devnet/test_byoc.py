"""BYOC routes (§6): /process/token, /process/request/* (batch and SSE), /capability/register|unregister."""

from __future__ import annotations

import base64
import json
import logging
import os
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.client._signer import ticket_params_from_token
from livepeer.client._tickets import make_payment
from livepeer.devnet import DevnetOptions
from livepeer.devnet._keys import EthKey


def client() -> httpx.Client:
    return httpx.Client(verify=False, timeout=20)


def funded(net: Any) -> EthKey:
    """A fresh key with a ticket reserve on the devnet's orchestrators."""
    key = EthKey.generate()
    net.net.fund(key.address)
    return key


def token_for(url: str, key: EthKey, capability: str) -> dict[str, Any]:
    header = base64.b64encode(
        json.dumps(
            {"addr": key.address, "sig": "0x" + key.sign_hash_of(key.address).hex()}
        ).encode()
    ).decode()
    with client() as c:
        r = c.get(
            f"{url}/process/token",
            headers={"Livepeer-Eth-Address": header, "Livepeer-Capability": capability},
        )
    assert r.status_code == 200, r.text
    token: dict[str, Any] = r.json()
    return token


def payment_from(
    token: dict[str, Any], key: EthKey, nonces: range | list[int] = range(1, 2)
) -> str:
    """A Livepeer-Payment header of real tickets (go-livepeer's pm hashing) signed by ``key``."""
    params = ticket_params_from_token(token)
    assert params is not None
    price = token["price"]
    payment = make_payment(
        params,
        sender=key.address_bytes,
        expected_price=(price.get("pricePerUnit", 0), price.get("pixelsPerUnit", 1)),
        nonces=nonces,
        sign=key.sign_raw,
    )
    return base64.b64encode(payment.SerializeToString()).decode()


def dropped(fn: Any) -> bool:
    """True when the server closed the connection without a response (a go handler panic)."""
    try:
        fn()
    except httpx.RemoteProtocolError as exc:
        return "without sending a response" in str(exc)
    return False


# -- /process/token ---------------------------------------------------------------------------------------


def test_token_offchain(devnet: Any, sender: EthKey, eth_address_header: Any) -> None:
    url = devnet.orchestrators[0]
    with client() as c:
        r = c.get(
            f"{url}/process/token",
            headers={
                "Livepeer-Eth-Address": eth_address_header(sender),
                "Livepeer-Capability": "text-reversal",
            },
        )
    assert r.status_code == 200
    token = r.json()
    assert token["service_addr"] == url
    assert token["sender_address"]["addr"] == sender.address
    assert "ticket_params" not in token
    assert token["available_capacity"] > 0
    assert "pricePerUnit" not in token["price"]


def test_token_offchain_refuses_0x_signature(devnet: Any, sender: EthKey) -> None:
    """go hex-decodes ``sig`` before its offchain always-valid check (job_orchestrator.go:597-605)."""
    header = base64.b64encode(json.dumps({"addr": sender.address, "sig": "0x"}).encode()).decode()
    with client() as c:
        r = c.get(
            f"{devnet.orchestrators[0]}/process/token",
            headers={"Livepeer-Eth-Address": header, "Livepeer-Capability": "text-reversal"},
        )
    assert (r.status_code, r.text) == (400, "Invalid eth address header \n")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_token_onchain_has_ticket_params_and_price(devnet_onchain: Any) -> None:
    key = funded(devnet_onchain)
    token = token_for(devnet_onchain.orchestrators[1], key, "text-reversal")
    assert token["price"] == {"pricePerUnit": 2000, "pixelsPerUnit": 1}  # orch 1: twice the base
    recipient = base64.b64decode(token["ticket_params"]["recipient"])
    assert "0x" + recipient.hex() == devnet_onchain.info["orchestrator_addresses"][1].lower()
    assert token["sender_address"]["addr"] == key.address
    assert token["LastNonce"] == 0


def test_token_unfunded_sender_priced_503_free_200(devnet_onchain: Any) -> None:
    """JobPriceInfo fails with "insufficient sender reserve" (503) only when the price is above 0; at
    price 0 go-livepeer asks for no reserve and mints zero-value ticket params (recipient.go:193-228)."""
    key = EthKey.generate()
    header = base64.b64encode(
        json.dumps(
            {"addr": key.address, "sig": "0x" + key.sign_hash_of(key.address).hex()}
        ).encode()
    ).decode()
    with client() as c:
        priced = c.get(
            f"{devnet_onchain.orchestrators[0]}/process/token",
            headers={"Livepeer-Eth-Address": header, "Livepeer-Capability": "text-reversal"},
        )
        unknown = c.get(
            f"{devnet_onchain.orchestrators[0]}/process/token",
            headers={"Livepeer-Eth-Address": header, "Livepeer-Capability": "no-such-cap"},
        )
    assert (priced.status_code, priced.text) == (
        503,
        "Could not get price err=insufficient sender reserve\n",
    )
    assert unknown.status_code == 200
    token = unknown.json()
    assert token["price"] == {"pixelsPerUnit": 1}
    assert "face_value" not in token["ticket_params"]
    assert "available_capacity" not in token


@pytest.mark.parametrize(
    ("header", "text"),
    [
        (None, "Must have eth address and signature on address in Livepeer-Eth-Address header\n"),
        ("%%%not-base64", "Invalid eth address header \n"),
        (base64.b64encode(b"not json").decode(), "Invalid eth address header \n"),
        (base64.b64encode(b"[1, 2]").decode(), "Invalid eth address header \n"),
    ],
)
def test_token_bad_headers(devnet_onchain: Any, header: str | None, text: str) -> None:
    headers = {"Livepeer-Capability": "text-reversal"}
    if header is not None:
        headers["Livepeer-Eth-Address"] = header
    with client() as c:
        r = c.get(f"{devnet_onchain.orchestrators[0]}/process/token", headers=headers)
    assert (r.status_code, r.text) == (400, text)


def test_token_missing_capability(devnet: Any, eth_address_header: Any, sender: EthKey) -> None:
    with client() as c:
        r = c.get(
            f"{devnet.orchestrators[0]}/process/token",
            headers={"Livepeer-Eth-Address": eth_address_header(sender)},
        )
    assert r.status_code == 400
    assert r.text.startswith("Job capabilities not provided")


def test_token_onchain_bad_signature(devnet_onchain: Any, sender: EthKey) -> None:
    other = EthKey.generate()
    header = base64.b64encode(
        json.dumps(
            {"addr": sender.address, "sig": "0x" + other.sign_hash_of(other.address).hex()}
        ).encode()
    ).decode()
    with client() as c:
        r = c.get(
            f"{devnet_onchain.orchestrators[0]}/process/token",
            headers={"Livepeer-Eth-Address": header, "Livepeer-Capability": "text-reversal"},
        )
    assert (r.status_code, r.text) == (400, "Invalid eth address header \n")


def test_token_rejects_other_methods(devnet: Any) -> None:
    with client() as c:
        r = c.post(f"{devnet.orchestrators[0]}/process/token")
    assert (r.status_code, r.text) == (405, "Method not allowed\n")


# -- /process/request -------------------------------------------------------------------------------------


def test_request_offchain_batch(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": job_header(None, "text-reversal")},
            json={"text": "devnet"},
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"original": "devnet", "reversed": "tenved"}
    assert r.headers["Livepeer-Balance"] == "0"
    assert r.headers["content-type"].startswith("application/json")


def test_request_offchain_0x_signature_is_refused(devnet: Any) -> None:
    """job_orchestrator.go:559-566: "0x" fails hex decoding before the offchain VerifySig."""
    job = {"request": "{}", "capability": "text-reversal", "timeout_seconds": 5}
    with client() as c:
        rs = [
            c.post(
                f"{devnet.orchestrators[0]}/process/request/text-reversal",
                headers={"Livepeer": base64.b64encode(json.dumps(job | extra).encode()).decode()},
                json={"text": "x"},
            )
            for extra in ({"sig": "0x"}, {"sig": ""}, {"sig": "0x" + "00" * 65})
        ]
    assert (rs[0].status_code, rs[0].text) == (400, "Could not verify job creds\n")
    assert rs[1].status_code == 200
    assert (
        rs[2].status_code == 200
    )  # 132 characters: the prefix is stripped, any hex passes offchain


@pytest.mark.parametrize(
    ("livepeer", "status", "text"),
    [
        (None, 400, "Could not verify job creds\n"),
        ("@@@", 400, "Could not verify job creds\n"),
        (base64.b64encode(b"{bad json").decode(), 400, "Could not verify job creds\n"),
    ],
)
def test_request_malformed_livepeer_header(
    devnet: Any, livepeer: str | None, status: int, text: str
) -> None:
    headers = {} if livepeer is None else {"Livepeer": livepeer}
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/process/request/text-reversal", headers=headers, json={}
        )
    assert (r.status_code, r.text) == (status, text)


def test_request_unknown_capability_is_503(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/process/request/nope",
            headers={"Livepeer": job_header(None, "no-such-capability")},
            json={},
        )
    assert (r.status_code, r.text) == (503, "No capacity available for capability\n")


def test_request_zero_timeout_and_non_json_request(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r1 = c.post(
            f"{devnet.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": job_header(None, "text-reversal", timeout_seconds=0)},
            json={"text": "x"},
        )
        r2 = c.post(
            f"{devnet.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": job_header(None, "text-reversal", request="not json")},
            json={"text": "x"},
        )
    assert (r1.status_code, r1.text) == (
        400,
        "no timeout_seconds set with request, timeout_seconds is required\n",
    )
    assert r2.status_code == 400
    assert r2.text.startswith("Unable to unmarshal job request details err=")


def test_request_worker_errors_pass_through(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": job_header(None, "text-reversal")},
            json={"wrong": "field"},
        )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["Livepeer-Balance"] == "0"


def test_request_rejects_get(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r = c.get(f"{devnet.orchestrators[0]}/process/request/text-reversal")
    assert (r.status_code, r.text) == (405, "Method not allowed\n")


def test_request_onchain_bad_signature(devnet_onchain: Any, job_header: Any) -> None:
    key, other = EthKey.generate(), EthKey.generate()
    header = json.loads(base64.b64decode(job_header(key, "text-reversal")))
    header["sig"] = "0x" + other.sign_hash_of("{}").hex()
    with client() as c:
        r = c.post(
            f"{devnet_onchain.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": base64.b64encode(json.dumps(header).encode()).decode()},
            json={"text": "x"},
        )
    assert (r.status_code, r.text) == (400, "Could not verify job creds\n")


def test_request_onchain_low_balance_is_400(devnet_onchain: Any, job_header: Any) -> None:
    key = funded(devnet_onchain)
    with client() as c:
        r = c.post(
            f"{devnet_onchain.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": job_header(key, "text-reversal")},
            json={"text": "x"},
        )
    assert (r.status_code, r.text) == (400, "Insufficient balance for request\n")


def test_request_onchain_undecodable_payment_drops_the_connection(
    devnet_factory: Any, job_header: Any
) -> None:
    """confirmPayment reads a nil balance after a payment error and panics (job_orchestrator.go:491-497);
    the undecodable payment also leaks the unit of capacity reserved for the job."""
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    url = net.orchestrators[0]
    before = token_for(url, key, "text-reversal")["available_capacity"]
    with client() as c:
        assert dropped(
            lambda: c.post(
                f"{url}/process/request/text-reversal",
                headers={
                    "Livepeer": job_header(key, "text-reversal"),
                    "Livepeer-Payment": "!!notbase64",
                },
                json={"text": "x"},
            )
        )
    assert token_for(url, key, "text-reversal").get("available_capacity", 0) == before - 1


def test_request_onchain_paid_job_debits_balance(devnet_onchain: Any, job_header: Any) -> None:
    """Real tickets from the token's params, signed by the job's key: EV credited, job cost debited."""
    key = funded(devnet_onchain)
    url = devnet_onchain.orchestrators[0]
    token = token_for(url, key, "text-reversal")
    with client() as c:
        r = c.post(
            f"{url}/process/request/text-reversal",
            headers={
                "Livepeer": job_header(key, "text-reversal"),
                "Livepeer-Payment": payment_from(token, key),
            },
            json={"text": "paid"},
        )
        assert r.status_code == 200, r.text
        balance = int(r.headers["Livepeer-Balance"])
        # One ticket is worth 1e10 x floor(2^256/1000) / (2^256-1) ~ 1e7 wei; the job cost ceil(s) x 1000.
        assert 10**7 - 10 * 1000 <= balance < 10**7
        # Livepeer-Balance is FloatString(0) (rounded), the token's balance PriceToInt64 (floored).
        exact = devnet_onchain.net.orchestrators[0].orch.balances.get(
            ("0x" + key.address_bytes.hex(), "text-reversal")
        )
        assert balance == round(exact)
        assert token_for(url, key, "text-reversal")["balance"] == exact.__floor__()
        # Credit is per (sender, capability): another capability starts from zero.
        other = c.post(
            f"{url}/process/request/sentiment",
            headers={"Livepeer": job_header(key, "sentiment")},
            json={"text": "good"},
        )
        assert other.status_code == 400


def test_request_onchain_credit_goes_to_the_payment_sender_not_the_job_sender(
    devnet_onchain: Any, job_header: Any
) -> None:
    """core/orchestrator.go:121,204 credit the payment's sender; :457,491 check the job's sender."""
    key, payer = funded(devnet_onchain), funded(devnet_onchain)
    url = devnet_onchain.orchestrators[0]
    token = token_for(url, payer, "text-reversal")
    with client() as c:
        r = c.post(
            f"{url}/process/request/text-reversal",
            headers={
                "Livepeer": job_header(key, "text-reversal"),
                "Livepeer-Payment": payment_from(token, payer),
            },
            json={"text": "x"},
        )
    assert (r.status_code, r.text) == (400, "Insufficient balance for request\n")
    assert token_for(url, payer, "text-reversal")["balance"] > 0
    assert "balance" not in token_for(url, key, "text-reversal")


def test_request_onchain_ticket_with_bad_signature_or_params_drops(
    devnet_onchain: Any, job_header: Any
) -> None:
    key, thief = funded(devnet_onchain), funded(devnet_onchain)
    url = devnet_onchain.orchestrators[0]
    token = token_for(url, key, "text-reversal")
    forged = payment_from(token, key)
    payment = pb.Payment()
    payment.ParseFromString(base64.b64decode(forged))
    payment.ticket_sender_params[0].sig = thief.sign_raw(b"\0" * 32)
    bad_sig = base64.b64encode(payment.SerializeToString()).decode()
    with client() as c:

        def post(header: str) -> httpx.Response:
            return c.post(
                f"{url}/process/request/text-reversal",
                headers={"Livepeer": job_header(key, "text-reversal"), "Livepeer-Payment": header},
                json={"text": "x"},
            )

        assert dropped(lambda: post(bad_sig))
        # Params minted for `key` do not verify for another sender (the rand hash binds the sender).
        assert dropped(lambda: post(payment_from(token, thief)))
    assert "balance" not in token_for(url, key, "text-reversal")


def test_request_onchain_repeated_nonce_keeps_earlier_credit_then_drops(
    devnet_onchain: Any, job_header: Any
) -> None:
    """ProcessPayment credits tickets until the first refused one (nonce already seen), then errors."""
    key = funded(devnet_onchain)
    url = devnet_onchain.orchestrators[0]
    token = token_for(url, key, "text-reversal")
    with client() as c:
        assert dropped(
            lambda: c.post(
                f"{url}/process/request/text-reversal",
                headers={
                    "Livepeer": job_header(key, "text-reversal"),
                    "Livepeer-Payment": payment_from(token, key, [7, 7, 8]),
                },
                json={"text": "x"},
            )
        )
    balance = token_for(url, key, "text-reversal")["balance"]
    assert 9 * 10**6 < balance < 11 * 10**6  # exactly one ticket's EV (~1e7 wei)


# -- SSE --------------------------------------------------------------------------------------------------


def test_sse_offchain_passes_lines_and_adds_balance_before_done(
    devnet: Any, job_header: Any
) -> None:
    lines: list[str] = []
    with (
        client() as c,
        c.stream(
            "POST",
            f"{devnet.orchestrators[0]}/process/request/token-stream",
            headers={"Livepeer": job_header(None, "token-stream", timeout_seconds=5)},
            json={"text": "one two three"},
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "Livepeer-Payment-Balance" in r.headers
        for line in r.iter_lines():
            lines.append(line)
            if line == "data: [DONE]":
                break
    data = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    tokens = [d["token"] for d in data if "token" in d]
    assert tokens == ["one", "two", "three"]
    assert lines[-1] == "data: [DONE]"
    assert {"balance": 0} in data or {"balance": 0.0} in data


# -- registration -----------------------------------------------------------------------------------------


def test_register_needs_the_orchestrator_secret(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions())
    url = net.orchestrators[0]
    secret = net.info["orchestrator_secrets"][0]
    body = {
        "name": "echo",
        "url": net.net.workers["text-reversal"],
        "capacity": 1,
        "price_per_unit": 0,
    }
    with client() as c:
        assert (
            c.post(
                f"{url}/capability/register", json=body, headers={"Authorization": "wrong"}
            ).status_code
            == 400
        )
        assert (
            c.post(f"{url}/capability/register", json=body, headers={"Authorization": secret}).text
            == "ok"
        )
        r = c.post(
            f"{url}/process/request/echo",
            headers={
                "Livepeer": base64.b64encode(
                    json.dumps(
                        {"request": "{}", "capability": "echo", "timeout_seconds": 5}
                    ).encode()
                ).decode()
            },
            json={"text": "abc"},
        )
        assert r.json()["reversed"] == "cba"
        assert (
            c.post(
                f"{url}/capability/unregister", content="echo", headers={"Authorization": secret}
            ).status_code
            == 200
        )
        r = c.post(
            f"{url}/process/request/echo",
            headers={
                "Livepeer": base64.b64encode(
                    json.dumps(
                        {"request": "{}", "capability": "echo", "timeout_seconds": 5}
                    ).encode()
                ).decode()
            },
            json={"text": "abc"},
        )
        assert r.status_code == 503


def test_sse_onchain_insufficient_balance_event(
    devnet_factory: Any, job_header: Any, eth_address_header: Any
) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    orch = net.net.orchestrators[0].orch
    payment = payment_from(token_for(net.orchestrators[0], key, "token-stream"), key)
    lines: list[str] = []
    with (
        client() as c,
        c.stream(
            "POST",
            f"{net.orchestrators[0]}/process/request/token-stream",
            headers={
                "Livepeer": job_header(key, "token-stream", timeout_seconds=60),
                "Livepeer-Payment": payment,
            },
            json={"text": "a b c d e f g h i j k l", "delay_ms": 1000},
        ) as r,
    ):
        assert r.status_code == 200
        assert int(r.headers["Livepeer-Payment-Balance"]) > 0
        # Drain the credit behind the stream's back: the next 5-second debit goes negative.
        account = ("0x" + key.address_bytes.hex(), "token-stream")
        orch.balances.debit(account, orch.balances.get(account) - 1)
        for line in r.iter_lines():
            lines.append(line)
            if line == "data: [DONE]":
                break
    assert "event: insufficient balance" in lines
    i = lines.index("event: insufficient balance")
    assert lines[i + 1] == 'data: {"balance": 0}'
    assert lines[-1] == "data: [DONE]"
    assert len([x for x in lines if x.startswith('data: {"index"')]) < 12


def test_sse_timeout_ends_with_balance_and_done(devnet: Any, job_header: Any) -> None:
    lines: list[str] = []
    with (
        client() as c,
        c.stream(
            "POST",
            f"{devnet.orchestrators[0]}/process/request/token-stream",
            headers={"Livepeer": job_header(None, "token-stream", timeout_seconds=1)},
            json={"text": "a b c d e f", "delay_ms": 400},
        ) as r,
    ):
        lines = [line for line in r.iter_lines() if line]
    words = [x for x in lines if x.startswith('data: {"index"')]
    assert 0 < len(words) < 6  # cut off by timeout_seconds, not by the worker
    assert lines[-2].startswith('data: {"balance"')
    assert lines[-1] == "data: [DONE]"


# -- the client against the devnet's go-livepeer ladder (public API) ------------------------------------


def _balance(net: Any, key: EthKey | str, capability: str, index: int = 0) -> Any:
    address = key.address if isinstance(key, EthKey) else key
    orch = net.net.orchestrators[index].orch
    return orch.balances.get(("0x" + bytes.fromhex(address[2:]).hex(), capability))


def test_client_offchain_run_and_stream_with_and_without_a_key(devnet: Any) -> None:
    """Both would fail against master if the client sent "0x" signatures offchain (issue 11 item 1)."""
    from livepeer.client import Gateway

    keys: list[dict[str, Any]] = [{}, {"private_key": "0x" + EthKey.generate().private_key.hex()}]
    for kw in keys:
        with Gateway(orch_url=devnet.orchestrators, max_price=1, **kw) as gw:
            assert gw.run("text-reversal", input={"text": "ab"})["reversed"] == "ba"  # type: ignore[index]
            with gw.stream("token-stream", input={"text": "x y"}) as s:
                assert [ev.json()["token"] for ev in s] == ["x", "y"]  # type: ignore[index]


def test_client_onchain_key_pays_the_account_its_jobs_draw_from(devnet_factory: Any) -> None:
    from livepeer.client import Gateway

    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    calls = net.net.signer.calls
    with Gateway(token=net.token, private_key="0x" + key.private_key.hex()) as gw:
        assert gw.run("text-reversal", input={"text": "paid"})["reversed"] == "diap"  # type: ignore[index]
        credit = _balance(net, key, "text-reversal")
        assert 0 < credit < 10**7  # one ticket (~1e7 wei) minus the job
        with gw.stream("token-stream", input={"text": "x y"}) as s:
            assert [ev.json()["token"] for ev in s] == ["x", "y"]  # type: ignore[index]
        assert _balance(net, key, "token-stream") > 0
    assert net.net.signer.calls == calls  # no signer tickets for BYOC
    assert _balance(net, net.info["signer_address"], "text-reversal") == 0


def test_client_onchain_signer_only_fails_before_any_payment(devnet_factory: Any) -> None:
    from livepeer.client import ConfigError, Gateway

    net = devnet_factory(DevnetOptions(onchain=True))
    calls = net.net.signer.calls
    gw = Gateway(token=net.token)
    with gw, pytest.raises(ConfigError, match="private_key"):
        gw.run("text-reversal", input={"text": "x"})
    assert net.net.signer.calls == calls
    assert not net.net.orchestrators[0].orch.balances._credit


def test_client_onchain_signer_only_zero_price_capability_works(devnet_factory: Any) -> None:
    """At price 0 go-livepeer checks no reserve and no credit: a throwaway key can sign the job."""
    from livepeer.client import Gateway

    net = devnet_factory(DevnetOptions(onchain=True))
    secret = net.info["orchestrator_secrets"][0]
    body = {"name": "free-echo", "url": net.net.workers["text-reversal"], "capacity": 2}
    with client() as c:
        r = c.post(
            f"{net.orchestrators[0]}/capability/register",
            json=body,
            headers={"Authorization": secret},
        )
        assert r.text == "ok"
    with Gateway(token=net.token) as gw:
        assert gw.run("free-echo", input={"text": "ab"})["reversed"] == "ba"  # type: ignore[index]


def test_client_onchain_unfunded_key_is_refused_at_the_token(devnet_factory: Any) -> None:
    from livepeer.client import Gateway, NoOrchestratorError

    net = devnet_factory(DevnetOptions(onchain=True))
    key = EthKey.generate()  # no reserve
    gw = Gateway(token=net.token, private_key="0x" + key.private_key.hex(), max_retries=0)
    with gw, pytest.raises(NoOrchestratorError, match="insufficient sender reserve"):
        gw.run("sentiment", input={"text": "x"})


@pytest.mark.anyio
async def test_client_onchain_live_stream_pays_with_the_job_key(
    devnet_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start pays, the payment loop (/ai/stream/payment) tops up the job key's account, stop is signed."""
    import anyio

    from livepeer.client import Gateway
    from livepeer.client._routes import byoc as byoc_live

    monkeypatch.setattr(byoc_live, "PAYMENT_INTERVAL", 0.2)
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    account = ("0x" + key.address_bytes.hex(), "live-grayscale")
    orch = net.net.orchestrators[0].orch
    async with Gateway(token=net.token, private_key="0x" + key.private_key.hex()) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-grayscale") as session:
                job = session._job
                assert isinstance(job, byoc_live.ByocLiveJob)
                assert orch.balances.get(account) > 0  # the start carried tickets from `key`
                orch.balances.debit(account, orch.balances.get(account))  # drain it
                for _ in range(400):  # payment cycles come every 0.2 s
                    if job.payments:
                        break
                    await anyio.sleep(0.05)
                assert orch.balances.get(account) > 0
    assert net.net.signer.calls == 0


@pytest.mark.anyio
async def test_client_onchain_live_update_and_stop_pay_when_drained(
    devnet_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stream route needs 60 s of credit: update and stop fetch a token and pay first, as go's
    gateway does (byoc/stream_gateway.go sendJobToOrch), from the job key. No payment loop runs here."""
    import anyio

    from livepeer.client import Gateway
    from livepeer.client._routes import byoc as byoc_live

    monkeypatch.setattr(byoc_live, "PAYMENT_INTERVAL", 3600.0)
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    account = ("0x" + key.address_bytes.hex(), "live-grayscale")
    orch = net.net.orchestrators[0].orch
    async with Gateway(token=net.token, private_key="0x" + key.private_key.hex()) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-grayscale") as session:
                orch.balances.debit(account, orch.balances.get(account))
                await session.update({"strength": 1})
                assert orch.balances.get(account) > 0
                orch.balances.debit(account, orch.balances.get(account))
                job = session._job
                assert isinstance(job, byoc_live.ByocLiveJob)
                sid = job._s.stream_id
    assert orch.balances.get(account) > 0  # stop paid
    assert sid not in orch.live.sessions  # and the orchestrator stopped the stream


def test_control_api_funds_a_key(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    key = EthKey.generate()
    r = httpx.post(f"{net.control}/fund", json={"address": key.address})
    assert r.status_code == 200
    assert token_for(net.orchestrators[0], key, "text-reversal")["price"]["pricePerUnit"] > 0
    assert httpx.post(f"{net.control}/fund", json={"address": "nope"}).status_code == 400


def test_client_recovers_when_a_restart_invalidates_its_ticket_params(
    devnet_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """After a restart (here: its ticket secret rotated) the cached JobToken's params no longer verify: go-livepeer drops the connection on
    the refused payment; the client counts that as a failed attempt (no second payment there) and its next
    round fetches a fresh token and pays with it."""
    from livepeer.client import Gateway

    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    with Gateway(token=net.token, private_key="0x" + key.private_key.hex(), max_retries=2) as gw:
        assert gw.run("sentiment", input={"text": "good"})
        # What a restart does to payments, without its new TLS certificate (which a Gateway refuses by
        # design, D-hostile-2): the ticket secret and balances are gone; the client still caches the token.
        orch = net.net.orchestrators[0].orch
        orch.tickets.secret = os.urandom(32)
        orch.balances.clear()
        caplog.set_level(logging.INFO, logger="livepeer.devnet")
        assert gw.run("sentiment", input={"text": "good"})
    assert "BYOC payment refused: invalid recipientRand" in caplog.text
    assert caplog.text.count("BYOC payment refused") == 1
    assert _balance(net, key, "sentiment") > 0
