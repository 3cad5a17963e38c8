"""LV2V start ladder and ``/payment`` against the devnet, from go-livepeer at 176aa415.

Sources: server/ai_http.go:996-1186 ``StartLiveVideoToVideo`` (no Go test covers the handler; the ladder
is read from the code), server/segment_rpc.go:241-327 ``Payment`` / ``getPayment`` with its vectors in
server/rpc_test.go ``TestGetPayment_*``, and server/segment_rpc.go:401-452 ``verifySegCreds``.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb


def _seg(net: Any, index: int = 0, **fields: Any) -> str:
    orch = net.net.orchestrators[index].orch
    seg = pb.SegData(auth_token=orch.tickets.auth_token(), **fields)
    return base64.b64encode(seg.SerializeToString()).decode()


def _start(http: httpx.Client, net: Any, body: Any = None, **headers: str) -> httpx.Response:
    url = f"{net.orchestrators[0]}/live-video-to-video"
    if isinstance(body, bytes):
        return http.post(url, content=body, headers=headers)
    return http.post(url, json={"model_id": "noop"} if body is None else body, headers=headers)


def test_ladder_order_offchain(devnet: Any, fid_sync_http: httpx.Client) -> None:
    # go: server/ai_http.go:1007-1070 - 400 JSON, 503 capacity, 402 payment, 403 segment, in that order
    http, seg = fid_sync_http, _seg(devnet)
    bad_json = _start(http, devnet, b"{not json", **{"Livepeer-Segment": seg})
    assert bad_json.status_code == 400
    assert bad_json.headers["content-type"].startswith("text/plain")  # http.Error: plain text
    # Capacity is checked before the payment and segment headers are even decoded.
    assert (
        _start(
            http, devnet, {"model_id": "no-such-model"}, **{"Livepeer-Payment": "%%"}
        ).status_code
        == 503
    )
    # An empty string model is a model without capacity (only a missing one panics upstream).
    empty = _start(http, devnet, {"model_id": ""}, **{"Livepeer-Segment": seg})
    assert (empty.status_code, empty.text.strip()) == (503, "insufficient capacity")
    # Undecodable Livepeer-Payment is 402 even offchain, before the segment is looked at.
    assert (
        _start(http, devnet, **{"Livepeer-Payment": "%%", "Livepeer-Segment": "%%"}).status_code
        == 402
    )
    junk_proto = base64.b64encode(b"\xff\xff\xff").decode()
    assert _start(http, devnet, **{"Livepeer-Payment": junk_proto}).status_code == 402


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        (None, "missing auth token"),  # empty header = empty SegData: no auth token
        ("%%%", "ErrorSegEncoding"),
        ("forged", "invalid auth token"),
        ("expired", "expired auth token"),
    ],
)
def test_segment_credentials_are_checked_offchain(
    devnet: Any, fid_sync_http: httpx.Client, segment: str | None, message: str
) -> None:
    # go: server/segment_rpc.go:401-452 verifySegCreds (runs offchain too; auth token HMAC and expiry)
    tickets = devnet.net.orchestrators[0].orch.tickets
    if segment == "forged":
        token = pb.AuthToken(token=b"x" * 32, session_id="s", expiration=int(time.time()) + 600)
        segment = base64.b64encode(pb.SegData(auth_token=token).SerializeToString()).decode()
    elif segment == "expired":
        past = int(time.time()) - 5
        token = pb.AuthToken(token=tickets._token("s", past), session_id="s", expiration=past)
        segment = base64.b64encode(pb.SegData(auth_token=token).SerializeToString()).decode()
    headers = {} if segment is None else {"Livepeer-Segment": segment}
    r = _start(fid_sync_http, devnet, **headers)
    assert r.status_code == 403
    assert r.text.strip() == message


def test_onchain_missing_payment_is_a_signature_failure(
    devnet_onchain: Any, fid_sync_http: httpx.Client
) -> None:
    # go: server/ai_http.go:1052-1062 - no header decodes to an empty payment whose sender (zero address)
    # cannot have signed the segment: 403 ErrSegSig, not 402.
    paid = fid_sync_http.post(
        f"{devnet_onchain.signer}/generate-live-payment",
        json={
            "orchestrator": base64.b64encode(
                devnet_onchain.net.orchestrators[0]
                .orch.orchestrator_info(sender=devnet_onchain.net.signer.key.address_bytes)
                .SerializeToString()
            ).decode(),
            "type": "lv2v",
        },
    ).json()
    r = _start(fid_sync_http, devnet_onchain, **{"Livepeer-Segment": paid["segCreds"]})
    assert (r.status_code, r.text.strip()) == (403, "ErrSegSig")
    ok = _start(
        fid_sync_http,
        devnet_onchain,
        **{"Livepeer-Segment": paid["segCreds"], "Livepeer-Payment": paid["payment"]},
    )
    assert ok.status_code == 200, ok.text
    fid_sync_http.delete(ok.json()["publish_url"])


def test_success_shape(devnet: Any, fid_sync_http: httpx.Client) -> None:
    # go: server/ai_http.go:1041-1048 and 1168-1184 (URLs under {svc}/ai/trickle/{mid}; JSON response)
    r = _start(fid_sync_http, devnet, **{"Livepeer-Segment": _seg(devnet)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"publish_url", "subscribe_url", "control_url", "events_url", "manifest_id"}
    mid, base = body["manifest_id"], f"{devnet.orchestrators[0]}/ai/trickle/"
    assert body["publish_url"] == base + mid
    assert body["subscribe_url"] == base + mid + "-out"
    assert body["control_url"] == base + mid + "-control"
    assert body["events_url"] == base + mid + "-events"
    assert fid_sync_http.delete(body["publish_url"]).status_code == 200


# -- /payment (server/segment_rpc.go:241-327) --------------------------------------------------------------


def test_payment_header_vectors(devnet: Any, fid_sync_http: httpx.Client) -> None:
    # go: server/rpc_test.go TestGetPayment_GivenInvalidBase64_ReturnsError,
    # TestGetPayment_GivenInvalidProtoData_ReturnsError, TestGetPayment_GivenEmptyHeader_ReturnsEmptyPayment
    url, seg = f"{devnet.orchestrators[0]}/payment", _seg(devnet, manifestId=b"m")
    bad_b64 = fid_sync_http.post(
        url, headers={"Livepeer-Payment": "not base64!", "Livepeer-Segment": seg}
    )
    assert bad_b64.status_code == 402
    bad_proto = base64.b64encode(b"\xff\xff\xff").decode()
    assert (
        fid_sync_http.post(
            url, headers={"Livepeer-Payment": bad_proto, "Livepeer-Segment": seg}
        ).status_code
        == 402
    )
    # Empty header: an empty payment; offchain that is fine once the segment checks out.
    empty = fid_sync_http.post(url, headers={"Livepeer-Segment": seg})
    assert empty.status_code == 200
    result = pb.PaymentResult.FromString(empty.content)
    assert result.info.transcoder == devnet.orchestrators[0]
    # segment_rpc.go:257-258: the PaymentResult carries the session's own auth token.
    sent = pb.SegData.FromString(base64.b64decode(seg))
    assert result.info.auth_token == sent.auth_token
    # Missing segment: 403 (verifySegCreds), any method is routed (no method pattern upstream).
    assert fid_sync_http.post(url).status_code == 403
    assert fid_sync_http.get(url, headers={"Livepeer-Segment": seg}).status_code == 200


@pytest.mark.anyio
async def test_client_surfaces_plain_text_rejections(devnet_factory: Any) -> None:
    # go: server/ai_http.go:1157-1166 (runner start failure: http.Error 500 with the error text). Through
    # the public API the text ends up in the orchestrator's rejection, not a bare status code.
    from livepeer.client import Gateway
    from livepeer.client._errors import NoOrchestratorError
    from livepeer.devnet import DevnetOptions

    net = devnet_factory(DevnetOptions(orchestrators=1))
    net.faults(0).update({"worker_dead": True})
    async with Gateway(token=net.token, max_retries=0) as gw:
        with pytest.raises(NoOrchestratorError) as err:
            async with gw.live("live-video-to-video", model="noop"):
                pass
    (rejection,) = err.value.rejections
    assert rejection.orchestrator == net.orchestrators[0]
    assert "500" in rejection.reason
    assert "runner start failed" in rejection.reason
