"""One test per fault switch (orchestrator: worker_delay, worker_dead, no_capacity, price_multiplier,
trickle_470, restart; signer: 480/481/482 storms, discovery warm-up, /sign-byoc-job off) plus the control API."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet import DevnetOptions


def client() -> httpx.Client:
    return httpx.Client(verify=False, timeout=30)


def job(capability: str, timeout_seconds: int = 30) -> str:
    body = {
        "id": "j",
        "request": "{}",
        "capability": capability,
        "timeout_seconds": timeout_seconds,
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


def offchain_segment(net: Any) -> str:
    info = net.net.orchestrators[0].orch.orchestrator_info()
    return base64.b64encode(pb.SegData(auth_token=info.auth_token).SerializeToString()).decode()


def test_worker_delay_makes_a_short_client_deadline_expire(devnet_factory: Any) -> None:
    net = devnet_factory()
    url = f"{net.orchestrators[0]}/process/request/text-reversal"
    net.faults(0).update({"worker_delay": 3.0})
    with client() as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post(
                url, headers={"Livepeer": job("text-reversal")}, json={"text": "ab"}, timeout=0.5
            )
        net.faults(0).update({"worker_delay": 0})
        r = c.post(url, headers={"Livepeer": job("text-reversal")}, json={"text": "ab"}, timeout=10)
    assert r.status_code == 200
    assert r.json()["reversed"] == "ba"


def test_worker_dead_is_500_and_unregisters(devnet_factory: Any) -> None:
    net = devnet_factory()
    net.faults(0).update({"worker_dead": True})
    url = f"{net.orchestrators[0]}/process/request/text-reversal"
    with client() as c:
        first = c.post(url, headers={"Livepeer": job("text-reversal")}, json={"text": "x"})
        net.faults(0).update({"worker_dead": False})
        second = c.post(url, headers={"Livepeer": job("text-reversal")}, json={"text": "x"})
    assert first.status_code == 500
    assert second.status_code == 503  # the capability is gone until the worker registers again
    assert "text-reversal" not in net.net.orchestrators[0].orch.capabilities


def test_worker_dead_makes_lv2v_start_fail_after_a_good_get_orchestrator(
    devnet_factory: Any,
) -> None:
    net = devnet_factory()
    net.faults(0).update({"worker_dead": True})
    with client() as c:
        r = c.post(
            f"{net.orchestrators[0]}/live-video-to-video",
            headers={"Livepeer-Segment": offchain_segment(net)},
            json={"model_id": "noop"},
        )
    assert r.status_code == 500
    assert net.net.orchestrators[0].orch.lv2v_in_use == 0  # the failed start released its slot


def test_no_capacity_is_503_everywhere(devnet_factory: Any) -> None:
    net = devnet_factory()
    net.faults(0).update({"no_capacity": True})
    url = net.orchestrators[0]
    with client() as c:
        byoc = c.post(
            f"{url}/process/request/text-reversal",
            headers={"Livepeer": job("text-reversal")},
            json={},
        )
        lv2v = c.post(
            f"{url}/live-video-to-video",
            headers={"Livepeer-Segment": offchain_segment(net)},
            json={"model_id": "noop"},
        )
        ai = c.post(
            f"{url}/text-to-image",
            headers={"Livepeer-Segment": offchain_segment(net)},
            json={"prompt": "x", "model_id": "stabilityai/sdxl-turbo"},
        )
    assert byoc.status_code == 503
    assert lv2v.status_code == 503
    assert ai.status_code == 503
    info = net.net.orchestrators[0].orch.orchestrator_info()
    assert info.capabilities.constraints.PerCapability[35].models["noop"].capacityInUse == 4


def test_price_rise_mid_session_makes_the_signer_answer_481(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    orch = net.net.orchestrators[0].orch

    def pay(state: Any = None) -> httpx.Response:
        body: dict[str, Any] = {
            "orchestrator": base64.b64encode(orch.orchestrator_info().SerializeToString()).decode(),
            "type": "lv2v",
        }
        if state is not None:
            body.update(state=state, ManifestID="m")
        return httpx.post(f"{net.signer}/generate-live-payment", json=body)

    first = pay()
    assert first.status_code == 200
    net.faults(0).update({"price_multiplier": 3})
    assert orch.orchestrator_info().price_info.pricePerUnit == 3
    assert pay(first.json()["state"]).status_code == 481


def test_trickle_470_answers_too_far_behind(devnet_factory: Any) -> None:
    net = devnet_factory()
    url = net.orchestrators[0]
    with client() as c:
        start = c.post(
            f"{url}/live-video-to-video",
            headers={"Livepeer-Segment": offchain_segment(net)},
            json={"model_id": "noop"},
        ).json()
        net.faults(0).update({"trickle_470": 2})
        r1 = c.get(f"{start['subscribe_url']}/0", timeout=5)
        r2 = c.get(f"{start['subscribe_url']}/7", timeout=5)
        assert r1.status_code == 470
        assert r1.headers["Lp-Trickle-Latest"] == "0"
        assert r2.headers["Lp-Trickle-Seq"] == "7"
        assert net.faults(0).trickle_470 == 0
        c.delete(start["publish_url"])


def test_restart_brings_a_new_certificate_and_forgets_sessions(devnet_factory: Any) -> None:
    net = devnet_factory()
    url = net.orchestrators[0]
    handle = net.net.orchestrators[0]
    old_cert = handle.cert_pem
    with client() as c:
        start = c.post(
            f"{url}/live-video-to-video",
            headers={"Livepeer-Segment": offchain_segment(net)},
            json={"model_id": "noop"},
        ).json()
    net.restart(0)
    assert handle.cert_pem != old_cert
    assert handle.url == url  # same port
    with client() as c:
        assert c.post(start["control_url"]).status_code == 404  # channels are gone
        r = c.post(
            f"{url}/process/request/text-reversal",
            headers={"Livepeer": job("text-reversal")},
            json={"text": "ok"},
        )
        assert r.status_code == 200  # workers registered again


@pytest.mark.parametrize("status", [480, 481, 482])
def test_signer_storms(devnet_factory: Any, status: int) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    net.signer_faults.update({"storm_status": status, "storm_count": 2})
    info = net.net.orchestrators[0].orch.orchestrator_info()
    body = {"orchestrator": base64.b64encode(info.SerializeToString()).decode(), "type": "lv2v"}
    codes = [httpx.post(f"{net.signer}/generate-live-payment", json=body) for _ in range(3)]
    assert [r.status_code for r in codes] == [status, status, 200]
    if status == 480:
        assert codes[0].headers["Livepeer-Orchestrator-URL"] == net.orchestrators[0]
    assert "message" in codes[0].json()["error"]


def test_sign_byoc_job_is_a_branch_only_switch(devnet_factory: Any) -> None:
    net = devnet_factory()
    r = httpx.post(f"{net.signer}/sign-byoc-job", json={"capability": "x"})
    assert r.status_code == 404  # master go-livepeer has no such route
    net.signer_faults.update({"sign_byoc_job": True})
    r = httpx.post(f"{net.signer}/sign-byoc-job", json={"capability": "x"})
    assert r.status_code == 200


def test_control_api_flips_switches_and_restarts(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=2))
    control = net.control
    assert httpx.get(control).json()["orchestrators"] == net.orchestrators
    r = httpx.post(f"{control}/orchestrators/1/faults", json={"no_capacity": True})
    assert r.status_code == 200
    assert r.json()["orchestrators"][1]["no_capacity"] is True
    assert net.faults(1).no_capacity is True
    assert httpx.post(f"{control}/orchestrators/1/faults", json={"bogus": 1}).status_code == 400
    assert (
        httpx.post(f"{control}/orchestrators/1/faults", json={"worker_dead": "yes"}).status_code
        == 400
    )
    assert httpx.post(f"{control}/orchestrators/9/faults", json={}).status_code == 404
    r = httpx.post(f"{control}/signer/faults", json={"storm_status": 480, "storm_count": 1})
    assert r.json()["signer"]["storm_count"] == 1
    old = net.net.orchestrators[0].cert_pem
    assert httpx.post(f"{control}/orchestrators/0/restart", timeout=20).status_code == 200
    assert net.net.orchestrators[0].cert_pem != old
