"""Live-runner apps, orchestrator ``/discovery`` and ``/refresh-payment`` vectors from go-livepeer at 176aa415
(server/ai_http_test.go ``TestLiveRunner*``, server/rpc_test.go ``TestRefreshPayment_*``), run against the devnet.

Devnet runners: ``reverse`` (persistent, per second), ``reverse-once`` (single-shot), ``reverse-fixed``
(persistent, fixed price); capacity 2 each.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet import DevnetOptions


def _challenge(http: httpx.Client, net: Any, runner: str = "reverse") -> dict[str, Any]:
    payer = net.info["signer_address"]
    r = http.post(
        f"{net.orchestrators[0]}/apps/{runner}/session", headers={"Livepeer-Payer-Address": payer}
    )
    assert r.status_code == 402, r.text
    return dict(r.json())


def _pay(
    http: httpx.Client, net: Any, challenge: dict[str, Any], kind: str, **extra: Any
) -> dict[str, Any]:
    body = {
        "orchestrator": challenge["payment_params"],
        "ManifestID": challenge["manifest_id"],
        "type": kind,
        **extra,
    }
    r = http.post(f"{net.signer}/generate-live-payment", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _headers(paid: dict[str, Any]) -> dict[str, str]:
    return {"Livepeer-Payment": paid["payment"], "Livepeer-Segment": paid["segCreds"]}


def test_discovery_endpoint(devnet: Any, fid_sync_http: httpx.Client) -> None:
    # go: server/ai_http_test.go TestLiveRunnerDiscoveryEndpoint, ..._ReportsCapacityUsed,
    # ..._SingleShotReturnsProxiedURL (one entry: the orchestrator's address and its runners)
    url = devnet.orchestrators[0]
    body = fid_sync_http.get(f"{url}/discovery").json()
    assert len(body) == 1
    assert body[0]["address"] == url
    runners = {r["app"]: r for r in body[0]["runners"]}
    persistent = runners["text-reversal/devnet"]
    assert persistent["mode"] == "persistent"
    assert persistent["url"] == f"{url}/apps/reverse/session"
    assert runners["text-reversal/devnet-once"]["url"] == f"{url}/apps/reverse-once/app"
    assert persistent["capacity_available"] == persistent["capacity"] - persistent["capacity_used"]
    assert "price_info" not in persistent  # offchain: no price


def test_discovery_onchain_includes_price_info(
    devnet_onchain: Any, fid_sync_http: httpx.Client
) -> None:
    # go: server/ai_http_test.go TestLiveRunnerDiscoveryOnchainIncludesPriceInfo
    body = fid_sync_http.get(f"{devnet_onchain.orchestrators[0]}/discovery").json()
    units = {r["app"]: r["price_info"] for r in body[0]["runners"]}
    assert units["text-reversal/devnet"]["currency"] == "wei"
    assert units["text-reversal/devnet"]["unit"] == "seconds"
    assert units["text-reversal/devnet-fixed"]["unit"] == "fixed"
    assert all(int(p["price"]) > 0 for p in units.values())


def test_mode_is_checked_before_payment(devnet_onchain: Any, fid_sync_http: httpx.Client) -> None:
    # go: server/ai_http_test.go TestLiveRunnerReserveSessionRejectsSingleShotRunner,
    # TestLiveRunnerSingleShotProxyRejectsPersistentRunner (ai_http.go:229-232, 768-771: before any 402)
    url = devnet_onchain.orchestrators[0]
    r = fid_sync_http.post(f"{url}/apps/reverse-once/session")
    assert (r.status_code, r.text.strip()) == (400, "only persistent runners have sessions")
    r = fid_sync_http.post(f"{url}/apps/reverse/app/x")
    assert (r.status_code, r.text.strip()) == (400, "runner is not single-shot")


def test_onchain_challenge_and_invalid_payer(
    devnet_onchain: Any, fid_sync_http: httpx.Client
) -> None:
    # go: server/ai_http_test.go TestLiveRunnerReserveSessionOnchainReturnsPaymentChallenge,
    # TestLiveRunnerReserveSessionOnchainRejectsInvalidPayer (ai_http.go:395-415, 443-454, 494-520)
    url = devnet_onchain.orchestrators[0]
    bad = fid_sync_http.post(
        f"{url}/apps/reverse/session", headers={"Livepeer-Payer-Address": "nope"}
    )
    assert bad.status_code == 402
    assert bad.json() == {"error": {"message": "invalid live runner payment signer address"}}
    challenge = _challenge(fid_sync_http, devnet_onchain)
    assert set(challenge) == {"payment_params", "orchestrator", "manifest_id", "payment_url"}
    info = pb.OrchestratorInfo.FromString(base64.b64decode(challenge["payment_params"]))
    assert challenge["orchestrator"] == info.transcoder == url
    assert challenge["manifest_id"] == info.auth_token.session_id
    assert (
        challenge["payment_url"] == f"{url}/apps/reverse/session/{challenge['manifest_id']}/payment"
    )
    assert info.price_info.pixelsPerUnit == 1
    assert info.HasField("ticket_params")


def test_manifest_auth_mismatch_is_403(devnet_onchain: Any, fid_sync_http: httpx.Client) -> None:
    # go: server/ai_http_test.go TestLiveRunnerReserveSessionRejectsManifestAuthMismatch (ai_http.go:285-288)
    challenge = _challenge(fid_sync_http, devnet_onchain)
    paid = _pay(fid_sync_http, devnet_onchain, dict(challenge, manifest_id="other"), "live")
    r = fid_sync_http.post(
        f"{devnet_onchain.orchestrators[0]}/apps/reverse/session", headers=_headers(paid)
    )
    assert (r.status_code, r.text.strip()) == (403, "mismatched manifest and auth token")


def test_fixed_price_mismatch_is_400_before_reservation(
    devnet_onchain: Any, fid_sync_http: httpx.Client
) -> None:
    # go: server/ai_http_test.go TestLiveRunnerFixedPriceSessionRejectsMismatchedPriceBeforeReservation
    url = devnet_onchain.orchestrators[0]
    challenge = _challenge(fid_sync_http, devnet_onchain, "reverse-fixed")
    # Tickets minted at the (per-second) runner price of "reverse" do not match the fixed price.
    other = _challenge(fid_sync_http, devnet_onchain, "reverse")
    info = pb.OrchestratorInfo.FromString(base64.b64decode(other["payment_params"]))
    info.auth_token.CopyFrom(
        pb.OrchestratorInfo.FromString(base64.b64decode(challenge["payment_params"])).auth_token
    )
    info.price_info.pricePerUnit += 1
    forged = dict(challenge, payment_params=base64.b64encode(info.SerializeToString()).decode())
    paid = _pay(fid_sync_http, devnet_onchain, forged, "fixed")
    r = fid_sync_http.post(f"{url}/apps/reverse-fixed/session", headers=_headers(paid))
    assert (r.status_code, r.text.strip()) == (
        400,
        "payment price does not match live runner price",
    )


def test_paid_session_payment_stop_and_refresh(
    devnet_factory: Any, fid_sync_http: httpx.Client
) -> None:
    # go: server/ai_http_test.go TestLiveRunnerSessionPaymentAcceptsPayment, ..._RejectsMissingSession,
    # ..._RejectsManifestMismatch, ..._RejectsBadPaymentHeader, TestLiveRunnerStopSessionReleasesCapacity;
    # server/rpc_test.go TestRefreshPayment_ReturnsPinnedPaymentChallenge, ..._InvalidRequest,
    # ..._NoFixedPrice_ReturnsConflict
    net = devnet_factory(DevnetOptions(onchain=True, orchestrators=1))
    url, http = net.orchestrators[0], fid_sync_http
    challenge = _challenge(http, net)
    first = _pay(http, net, challenge, "live")
    opened = http.post(f"{url}/apps/reverse/session", headers=_headers(first))
    assert opened.status_code == 200, opened.text
    session = opened.json()
    sid = session["session_id"]
    assert sid == challenge["manifest_id"]
    assert session["control_url"] == f"{url}/apps/reverse/session/{sid}"  # ai_http.go:255
    pay_url = challenge["payment_url"]
    assert http.post(pay_url, headers={"Livepeer-Payment": "%%"}).status_code == 402
    again = _pay(http, net, challenge, "live", state=first["state"])
    ok = http.post(pay_url, headers=_headers(again))
    assert ok.status_code == 200, ok.text
    result = pb.PaymentResult.FromString(ok.content)
    sent = pb.SegData.FromString(base64.b64decode(again["segCreds"]))
    assert result.info.auth_token == sent.auth_token
    missing = http.post(f"{url}/apps/reverse/session/nope/payment", headers=_headers(again))
    assert missing.status_code == 404
    # A payment for another manifest on this session's route.
    other = _challenge(http, net)
    elsewhere = _pay(http, net, other, "live")
    mismatch = http.post(pay_url, headers=_headers(elsewhere))
    assert (mismatch.status_code, mismatch.text.strip()) == (
        403,
        "mismatched session and payment manifest",
    )
    # /refresh-payment: 400s, the pinned challenge, 409 for an unknown session.
    for body in (
        {"manifest_id": sid},
        {"sender": "not-an-address", "manifest_id": sid},
        {"sender": "0x1234567890123456789012345678901234567890"},
    ):
        r = http.post(f"{url}/refresh-payment", json=body)
        assert r.status_code == 400
        assert r.json()["error"]["message"]
    sender = net.info["signer_address"]
    fresh = http.post(f"{url}/refresh-payment", json={"sender": sender, "manifest_id": sid})
    assert fresh.status_code == 200, fresh.text
    refreshed = fresh.json()
    assert refreshed["manifest_id"] == sid
    assert refreshed["payment_url"] == f"{url}/payment"
    info = pb.OrchestratorInfo.FromString(base64.b64decode(refreshed["payment_params"]))
    assert info.auth_token.session_id == sid
    unknown = http.post(f"{url}/refresh-payment", json={"sender": sender, "manifest_id": "nope"})
    assert unknown.status_code == 409
    assert "fixed price not found for session" in unknown.json()["error"]["message"]
    # Stop: 204, and the capacity is back.
    assert http.post(f"{url}/apps/reverse/session/{sid}/stop").status_code == 204
    runners = {r["app"]: r for r in http.get(f"{url}/discovery").json()[0]["runners"]}
    assert runners["text-reversal/devnet"]["capacity_used"] == 0


def test_fixed_price_session_accepts_no_follow_up_payment(
    devnet_onchain: Any, fid_sync_http: httpx.Client
) -> None:
    # go: server/ai_http_test.go TestLiveRunnerFixedPriceSessionAccountsOnce (ai_http.go:551-554: 409)
    url = devnet_onchain.orchestrators[0]
    challenge = _challenge(fid_sync_http, devnet_onchain, "reverse-fixed")
    paid = _pay(fid_sync_http, devnet_onchain, challenge, "fixed")
    opened = fid_sync_http.post(f"{url}/apps/reverse-fixed/session", headers=_headers(paid))
    assert opened.status_code == 200, opened.text
    sid = opened.json()["session_id"]
    again = fid_sync_http.post(challenge["payment_url"], headers=_headers(paid))
    assert again.status_code == 409
    fid_sync_http.post(f"{url}/apps/reverse-fixed/session/{sid}/stop")


def test_no_capacity_is_503(devnet_factory: Any, fid_sync_http: httpx.Client) -> None:
    # go: server/ai_http_test.go TestLiveRunnerReserveSessionNoCapacity (offchain: reserve until full)
    net = devnet_factory(DevnetOptions(orchestrators=1))
    url = net.orchestrators[0]
    opened = [fid_sync_http.post(f"{url}/apps/reverse/session") for _ in range(2)]
    assert [r.status_code for r in opened] == [200, 200]
    assert fid_sync_http.post(f"{url}/apps/reverse/session").status_code == 503


# -- signer discovery (server/remote_signer.go:817-864) -------------------------------------------------


def test_signer_discovery_503_until_warm_and_caps_filter(
    devnet_factory: Any, fid_sync_http: httpx.Client
) -> None:
    # go: server/remote_signer_test.go TestRemoteSigner_Discovery (+ remote_signer.go:838-851: 503 "cache
    # empty" masked, empty caps values ignored, caps OR-filter)
    net = devnet_factory(DevnetOptions(orchestrators=2))
    url = f"{net.signer}/discover-orchestrators"
    net.signer_faults.update({"discovery_warm": False})
    cold = fid_sync_http.get(url)
    assert cold.status_code == 503
    assert cold.json() == {"error": {"message": "Service Unavailable Error"}}
    net.signer_faults.update({"discovery_warm": True})
    everyone = fid_sync_http.get(url).json()
    assert {e["address"] for e in everyone} == set(net.orchestrators)
    for entry in everyone:
        assert entry["score"] == 1
        assert "live-video-to-video/noop" in entry["capabilities"]
        assert "text-reversal/devnet" in entry["capabilities"]  # runner apps are listed too
    assert fid_sync_http.get(url, params={"caps": ""}).json() == everyone
    either = fid_sync_http.get(
        url, params=[("caps", "nope/x"), ("caps", "live-video-to-video/noop")]
    )
    assert len(either.json()) == 2
    assert fid_sync_http.get(url, params={"caps": "nope/x"}).json() == []
    # BYOC capability names are not in PerCapability: never matched.
    assert fid_sync_http.get(url, params={"caps": "text-reversal"}).json() == []


@pytest.mark.anyio
async def test_signer_discovery_404_when_disabled() -> None:
    # go: server/remote_signer.go:84-93 (the route exists only with -remoteDiscovery)
    from livepeer.devnet._signer import Signer

    transport = httpx.ASGITransport(app=Signer(discovery_enabled=False).app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signer") as http:
        assert (await http.get("/discover-orchestrators")).status_code == 404
