"""BYOC routes (§6): /process/token, /process/request/* (batch and SSE), /capability/register|unregister."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from livepeer.devnet import DevnetOptions
from livepeer.devnet._keys import EthKey


def client() -> httpx.Client:
    return httpx.Client(verify=False, timeout=20)


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


def test_token_onchain_has_ticket_params_and_price(
    devnet_onchain: Any, sender: EthKey, eth_address_header: Any
) -> None:
    with client() as c:
        r = c.get(
            f"{devnet_onchain.orchestrators[1]}/process/token",
            headers={
                "Livepeer-Eth-Address": eth_address_header(sender),
                "Livepeer-Capability": "text-reversal",
            },
        )
    assert r.status_code == 200
    token = r.json()
    assert token["price"]["pricePerUnit"] == 2000  # orchestrator 1 charges twice the base price
    recipient = base64.b64decode(token["ticket_params"]["recipient"])
    assert "0x" + recipient.hex() == devnet_onchain.info["orchestrator_addresses"][1].lower()


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 400),
        ("%%%not-base64", 400),
        (base64.b64encode(b"not json").decode(), 400),
        (base64.b64encode(b"[1, 2]").decode(), 400),
    ],
)
def test_token_bad_headers(devnet_onchain: Any, header: str | None, status: int) -> None:
    headers = {"Livepeer-Capability": "text-reversal"}
    if header is not None:
        headers["Livepeer-Eth-Address"] = header
    with client() as c:
        r = c.get(f"{devnet_onchain.orchestrators[0]}/process/token", headers=headers)
    assert r.status_code == status


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
    assert r.status_code == 400


def test_token_rejects_other_methods(devnet: Any) -> None:
    with client() as c:
        r = c.post(f"{devnet.orchestrators[0]}/process/token")
    assert r.status_code == 405


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


@pytest.mark.parametrize(
    ("livepeer", "status", "text"),
    [
        (None, 400, "Missing"),
        ("@@@", 400, "Unable to parse"),
        (base64.b64encode(b"{bad json").decode(), 400, "Unable to parse"),
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
    assert r.status_code == status
    assert text in r.text


def test_request_unknown_capability_is_503(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/process/request/nope",
            headers={"Livepeer": job_header(None, "no-such-capability")},
            json={},
        )
    assert r.status_code == 503
    assert "No capacity available for capability" in r.text


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
    assert r1.status_code == 400
    assert r2.status_code == 400


def test_request_worker_errors_pass_through(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": job_header(None, "text-reversal")},
            json={"wrong": "field"},
        )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/plain")


def test_request_rejects_get(devnet: Any, job_header: Any) -> None:
    with client() as c:
        r = c.get(f"{devnet.orchestrators[0]}/process/request/text-reversal")
    assert r.status_code == 405


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
    assert r.status_code == 400
    assert "Could not verify job creds" in r.text


def test_request_onchain_low_balance_is_400(devnet_onchain: Any, job_header: Any) -> None:
    key = EthKey.generate()
    with client() as c:
        r = c.post(
            f"{devnet_onchain.orchestrators[0]}/process/request/text-reversal",
            headers={"Livepeer": job_header(key, "text-reversal")},
            json={"text": "x"},
        )
    assert r.status_code == 400
    assert "Insufficient balance" in r.text


def test_request_onchain_bad_payment_base64(devnet_onchain: Any, job_header: Any) -> None:
    key = EthKey.generate()
    with client() as c:
        r = c.post(
            f"{devnet_onchain.orchestrators[0]}/process/request/text-reversal",
            headers={
                "Livepeer": job_header(key, "text-reversal"),
                "Livepeer-Payment": "!!notbase64",
            },
            json={"text": "x"},
        )
    assert r.status_code == 402


def test_request_onchain_paid_job_debits_balance(
    devnet_onchain: Any, job_header: Any, eth_address_header: Any
) -> None:
    """Pay with tickets minted for the capability's price (the token's ticket params), then run a job."""
    from livepeer.client._proto import lp_rpc_pb2 as pb

    key = EthKey.generate()
    url = devnet_onchain.orchestrators[0]
    with client() as c:
        token = c.get(
            f"{url}/process/token",
            headers={
                "Livepeer-Eth-Address": eth_address_header(key),
                "Livepeer-Capability": "text-reversal",
            },
        ).json()
        tp: dict[str, Any] = {
            k: base64.b64decode(v) for k, v in token["ticket_params"].items() if isinstance(v, str)
        }
        payment = pb.Payment(
            ticket_params=pb.TicketParams(**tp),
            sender=key.address_bytes,
            expected_price=pb.PriceInfo(
                pricePerUnit=token["price"]["pricePerUnit"],
                pixelsPerUnit=token["price"]["pixelsPerUnit"],
            ),
        )
        payment.ticket_sender_params.add(sender_nonce=1, sig=key.sign_hash_of(b"ticket-1"))
        header = base64.b64encode(payment.SerializeToString()).decode()
        r = c.post(
            f"{url}/process/request/text-reversal",
            headers={"Livepeer": job_header(key, "text-reversal"), "Livepeer-Payment": header},
            json={"text": "paid"},
        )
        assert r.status_code == 200, r.text
        balance = int(r.headers["Livepeer-Balance"])
        # One ticket is worth 1e7 wei; the job cost ceil(seconds) x 1000 wei.
        assert 10**7 - 10 * 1000 <= balance < 10**7
        again = c.get(
            f"{url}/process/token",
            headers={
                "Livepeer-Eth-Address": eth_address_header(key),
                "Livepeer-Capability": "text-reversal",
            },
        ).json()
        assert again["balance"] == balance
        # Credit is per (sender, capability): another capability starts from zero.
        other = c.post(
            f"{url}/process/request/sentiment",
            headers={"Livepeer": job_header(key, "sentiment")},
            json={"text": "good"},
        )
        assert other.status_code == 400


def test_request_onchain_ticket_from_another_sender_is_rejected(
    devnet_onchain: Any, job_header: Any, eth_address_header: Any
) -> None:
    from livepeer.client._proto import lp_rpc_pb2 as pb

    key, thief = EthKey.generate(), EthKey.generate()
    url = devnet_onchain.orchestrators[0]
    with client() as c:
        token = c.get(
            f"{url}/process/token",
            headers={
                "Livepeer-Eth-Address": eth_address_header(key),
                "Livepeer-Capability": "text-reversal",
            },
        ).json()
        tp: dict[str, Any] = {
            k: base64.b64decode(v) for k, v in token["ticket_params"].items() if isinstance(v, str)
        }
        payment = pb.Payment(ticket_params=pb.TicketParams(**tp), sender=thief.address_bytes)
        payment.expected_price.pricePerUnit = token["price"]["pricePerUnit"]
        payment.expected_price.pixelsPerUnit = token["price"]["pixelsPerUnit"]
        payment.ticket_sender_params.add(sender_nonce=1, sig=thief.sign_hash_of(b"t"))
        r = c.post(
            f"{url}/process/request/text-reversal",
            headers={
                "Livepeer": job_header(key, "text-reversal"),
                "Livepeer-Payment": base64.b64encode(payment.SerializeToString()).decode(),
            },
            json={"text": "x"},
        )
    assert r.status_code == 400
    assert "sender" in r.text


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


def _pay_for(net: Any, key: EthKey, capability: str, eth_address_header: Any) -> str:
    """A Livepeer-Payment header with one ticket minted at ``capability``'s price by orchestrator 0."""
    from livepeer.client._proto import lp_rpc_pb2 as pb

    with client() as c:
        token = c.get(
            f"{net.orchestrators[0]}/process/token",
            headers={
                "Livepeer-Eth-Address": eth_address_header(key),
                "Livepeer-Capability": capability,
            },
        ).json()
    tp: dict[str, Any] = {
        k: base64.b64decode(v) for k, v in token["ticket_params"].items() if isinstance(v, str)
    }
    payment = pb.Payment(ticket_params=pb.TicketParams(**tp), sender=key.address_bytes)
    payment.expected_price.pricePerUnit = token["price"]["pricePerUnit"]
    payment.expected_price.pixelsPerUnit = token["price"]["pixelsPerUnit"]
    payment.ticket_sender_params.add(sender_nonce=1, sig=key.sign_hash_of(b"t"))
    return base64.b64encode(payment.SerializeToString()).decode()


def test_sse_onchain_insufficient_balance_event(
    devnet_factory: Any, job_header: Any, eth_address_header: Any
) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    key = EthKey.generate()
    orch = net.net.orchestrators[0].orch
    payment = _pay_for(net, key, "token-stream", eth_address_header)
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
        account = (key.address.lower(), "token-stream")
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
