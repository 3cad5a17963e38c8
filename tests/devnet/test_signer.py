"""Remote-signer emulator (§5, §3.1): orchestrator-info signature, live payments, discovery, /sign-byoc-job."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet import DevnetOptions
from livepeer.devnet._keys import recover_hash_signer
from livepeer.devnet._signer import byoc_v1_message


def orch_info_b64(net: Any, index: int = 0) -> str:
    info = net.net.orchestrators[index].orch.orchestrator_info()
    return base64.b64encode(info.SerializeToString()).decode()


def test_sign_orchestrator_info_is_personal_sign_of_the_checksummed_address(devnet: Any) -> None:
    r = httpx.post(f"{devnet.signer}/sign-orchestrator-info", json={})
    assert r.status_code == 200
    body = r.json()
    assert body["address"] == devnet.info["signer_address"]
    assert body["signature"].startswith("0x")
    assert len(body["signature"]) == 132
    assert (
        recover_hash_signer(body["address"], bytes.fromhex(body["signature"][2:]))
        == body["address"]
    )
    # Lower-casing the address changes the message: the signature no longer matches.
    assert (
        recover_hash_signer(body["address"].lower(), bytes.fromhex(body["signature"][2:]))
        != body["address"]
    )


def test_generate_live_payment_round_trip(devnet_onchain: Any) -> None:
    url = f"{devnet_onchain.signer}/generate-live-payment"
    first = httpx.post(url, json={"orchestrator": orch_info_b64(devnet_onchain), "type": "lv2v"})
    assert first.status_code == 200, first.text
    body = first.json()
    payment = pb.Payment.FromString(base64.b64decode(body["payment"]))
    seg = pb.SegData.FromString(base64.b64decode(body["segCreds"]))
    assert "0x" + payment.sender.hex() == devnet_onchain.info["signer_address"].lower()
    assert len(payment.ticket_sender_params) >= 1
    assert seg.auth_token.token
    assert set(body["state"]) == {"State", "Sig"}
    # Second call: state echoed verbatim plus the ManifestID; soon after the first, credit covers it -> 482.
    again = httpx.post(
        url,
        json={
            "orchestrator": orch_info_b64(devnet_onchain),
            "type": "lv2v",
            "state": body["state"],
            "ManifestID": "abc",
        },
    )
    assert again.status_code in (200, 482)
    if again.status_code == 200:
        assert (
            pb.SegData.FromString(base64.b64decode(again.json()["segCreds"])).manifestId == b"abc"
        )


def test_state_requires_manifest_id(devnet_onchain: Any) -> None:
    url = f"{devnet_onchain.signer}/generate-live-payment"
    state = httpx.post(
        url, json={"orchestrator": orch_info_b64(devnet_onchain), "type": "lv2v"}
    ).json()["state"]
    r = httpx.post(
        url, json={"orchestrator": orch_info_b64(devnet_onchain), "type": "lv2v", "state": state}
    )
    assert r.status_code == 400
    assert r.json()["error"]["message"]


def test_tampered_state_and_type_change_are_400(devnet_onchain: Any) -> None:
    url = f"{devnet_onchain.signer}/generate-live-payment"
    state = httpx.post(
        url, json={"orchestrator": orch_info_b64(devnet_onchain), "type": "lv2v"}
    ).json()["state"]
    forged = dict(state, State=base64.b64encode(b'{"Balance": "1000000000000"}').decode())
    r1 = httpx.post(
        url,
        json={
            "orchestrator": orch_info_b64(devnet_onchain),
            "type": "lv2v",
            "state": forged,
            "ManifestID": "m",
        },
    )
    r2 = httpx.post(
        url,
        json={
            "orchestrator": orch_info_b64(devnet_onchain),
            "type": "live",
            "state": state,
            "ManifestID": "m",
        },
    )
    assert r1.status_code == 400
    assert r2.status_code == 400


def test_state_for_another_orchestrator_is_400(devnet_onchain: Any) -> None:
    url = f"{devnet_onchain.signer}/generate-live-payment"
    state = httpx.post(
        url, json={"orchestrator": orch_info_b64(devnet_onchain, 0), "type": "lv2v"}
    ).json()["state"]
    r = httpx.post(
        url,
        json={
            "orchestrator": orch_info_b64(devnet_onchain, 1),
            "type": "lv2v",
            "state": state,
            "ManifestID": "m",
        },
    )
    assert r.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"orchestrator": "%%%"},
        {
            "type": "lv2v",
            "orchestrator": base64.b64encode(
                pb.OrchestratorInfo(transcoder="x").SerializeToString()
            ).decode(),
        },
    ],
)
def test_bad_orchestrator_info_is_400(devnet_onchain: Any, body: dict[str, Any]) -> None:
    r = httpx.post(f"{devnet_onchain.signer}/generate-live-payment", json=body)
    assert r.status_code == 400
    assert "error" in r.json()


def test_max_price_unit_must_match_type(devnet_onchain: Any) -> None:
    r = httpx.post(
        f"{devnet_onchain.signer}/generate-live-payment",
        json={
            "orchestrator": orch_info_b64(devnet_onchain),
            "type": "lv2v",
            "maxPrice": {"price": 1000, "currency": "wei", "unit": "seconds"},
        },
    )
    assert r.status_code == 400


def test_max_price_below_the_orchestrator_price_is_481(devnet_onchain: Any) -> None:
    r = httpx.post(
        f"{devnet_onchain.signer}/generate-live-payment",
        json={
            "orchestrator": orch_info_b64(devnet_onchain),
            "type": "lv2v",
            "maxPrice": {"price": 0.0001, "currency": "wei", "unit": "720p-pixel-seconds"},
        },
    )
    assert r.status_code == 481


def test_offchain_orchestrator_info_cannot_be_paid(devnet: Any) -> None:
    """An offchain orchestrator has no ticket params or price: the signer refuses (400)."""
    r = httpx.post(
        f"{devnet.signer}/generate-live-payment",
        json={"orchestrator": orch_info_b64(devnet), "type": "lv2v"},
    )
    assert r.status_code == 400


def test_discovery_lists_orchestrators_with_capabilities(devnet: Any) -> None:
    r = httpx.get(devnet.discovery)
    assert r.status_code == 200
    entries = r.json()
    assert [e["address"] for e in entries] == devnet.orchestrators
    assert all(e["score"] == 1 for e in entries)
    assert "live-video-to-video/noop" in entries[0]["capabilities"]


def test_discovery_caps_filter_is_an_or(devnet: Any) -> None:
    r = httpx.get(
        devnet.discovery, params=[("caps", "live-video-to-video/grayscale"), ("caps", "nope/x")]
    )
    assert len(r.json()) == 2
    none = httpx.get(devnet.discovery, params={"caps": "live-video-to-video/nope"})
    assert none.json() == []
    # BYOC capabilities are not in PerCapability, so they never match (§3.1).
    byoc = httpx.get(devnet.discovery, params={"caps": "text-reversal"})
    assert byoc.json() == []


def test_discovery_is_503_until_warm(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(discovery_warmup=60))
    r = httpx.get(net.discovery)
    assert r.status_code == 503
    assert r.json() == {"error": {"message": "Service Unavailable Error"}}


def test_sign_byoc_job_v1_layout(devnet_factory: Any) -> None:
    devnet = devnet_factory()
    devnet.signer_faults.update({"sign_byoc_job": True})  # branch-only route, off like master
    body = {
        "id": "j",
        "capability": "text-reversal",
        "request": "{}",
        "parameters": "",
        "timeout_seconds": 30,
    }
    r = httpx.post(f"{devnet.signer}/sign-byoc-job", json=body)
    assert r.status_code == 200
    out = r.json()
    assert out["sender"] == devnet.info["signer_address"]
    message = byoc_v1_message("j", "text-reversal", "{}", "", 30)
    assert message.startswith(b"LP_BYOC_JOB_V1\x00\x00\x00\x00\x00\x1e")
    assert recover_hash_signer(message, bytes.fromhex(out["signature"][2:])) == out["sender"]
