"""Live-runner apps (§10): /discovery, /apps/{runner}/session with the 402 challenge, proxy, payment, stop,
/refresh-payment."""

from __future__ import annotations

from typing import Any

import httpx

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet import DevnetOptions


def client() -> httpx.Client:
    return httpx.Client(verify=False, timeout=20)


def test_discovery_lists_the_runner(devnet: Any) -> None:
    url = devnet.orchestrators[0]
    with client() as c:
        body = c.get(f"{url}/discovery").json()
    assert len(body) == 1
    assert body[0]["address"] == url
    runner = body[0]["runners"][0]
    assert runner["url"] == f"{url}/apps/reverse/session"
    assert runner["app"] == "text-reversal/devnet"
    assert runner["mode"] == "persistent"
    assert "price_info" not in runner  # offchain
    signer = httpx.get(devnet.discovery, params={"caps": "text-reversal/devnet"}).json()
    assert len(signer) == 2
    assert signer[0]["runners"][0]["app"] == "text-reversal/devnet"


def test_offchain_session_proxy_and_stop(devnet: Any) -> None:
    url = devnet.orchestrators[1]
    with client() as c:
        r = c.post(f"{url}/apps/reverse/session")
        assert r.status_code == 200
        session = r.json()
        out = c.post(f"{session['app_url']}/", json={"text": "abc"})
        assert out.status_code == 200
        assert out.json()["reversed"] == "cba"
        assert c.post(f"{url}/apps/reverse/session/{session['session_id']}/stop").status_code == 204
        assert c.post(f"{session['app_url']}/", json={"text": "abc"}).status_code == 404
        assert c.post(f"{url}/apps/nope/session").status_code == 404


def test_onchain_402_challenge_then_paid_session(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    url = net.orchestrators[0]
    signer = net.info["signer_address"]
    with client() as c:
        no_payer = c.post(f"{url}/apps/reverse/session")
        assert no_payer.status_code == 402
        challenge = c.post(
            f"{url}/apps/reverse/session", headers={"Livepeer-Payer-Address": signer}
        )
        assert challenge.status_code == 402
        ch = challenge.json()
        assert set(ch) == {"payment_params", "orchestrator", "manifest_id", "payment_url"}
        assert ch["orchestrator"] == url

        def pay(manifest: str, state: Any = None) -> dict[str, Any]:
            body: dict[str, Any] = {
                "orchestrator": ch["payment_params"],
                "type": "live",
                "ManifestID": manifest,
            }
            if state is not None:
                body["state"] = state
            r = httpx.post(f"{net.signer}/generate-live-payment", json=body)
            assert r.status_code == 200, r.text
            result: dict[str, Any] = r.json()
            return result

        wrong = pay("not-the-challenge")
        r403 = c.post(
            f"{url}/apps/reverse/session",
            headers={"Livepeer-Payment": wrong["payment"], "Livepeer-Segment": wrong["segCreds"]},
        )
        assert r403.status_code == 403
        paid = pay(ch["manifest_id"])
        ok = c.post(
            f"{url}/apps/reverse/session",
            headers={"Livepeer-Payment": paid["payment"], "Livepeer-Segment": paid["segCreds"]},
        )
        assert ok.status_code == 200, ok.text
        session = ok.json()
        assert session["session_id"] == ch["manifest_id"]
        assert c.post(f"{session['app_url']}/", json={"text": "xy"}).json()["reversed"] == "yx"
        # Continue the state chain: a fresh chain on the same ticket params reuses nonce 1 (refused).
        more = pay(ch["manifest_id"], paid["state"])
        p = c.post(
            ch["payment_url"],
            headers={"Livepeer-Payment": more["payment"], "Livepeer-Segment": more["segCreds"]},
        )
        assert p.status_code == 200, p.text
        assert pb.PaymentResult.FromString(p.content).info.transcoder == url
        mismatch = c.post(
            ch["payment_url"],
            headers={"Livepeer-Payment": wrong["payment"], "Livepeer-Segment": wrong["segCreds"]},
        )
        assert mismatch.status_code == 403
        refreshed = c.post(
            f"{url}/refresh-payment", json={"sender": signer, "manifest_id": ch["manifest_id"]}
        )
        assert refreshed.status_code == 200
        assert refreshed.json()["manifest_id"] == ch["manifest_id"]
        assert c.post(f"{url}/refresh-payment", json={"sender": signer}).status_code == 400
        assert (
            c.post(
                f"{url}/refresh-payment", json={"sender": signer, "manifest_id": "zz"}
            ).status_code
            == 409
        )
