"""LV2V (§8), /payment, BYOC live streams (§7) and the built-in AI routes, at the HTTP level."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest

from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet._keys import EthKey


def client() -> httpx.Client:
    return httpx.Client(verify=False, timeout=20)


AI_T2I_MODEL = "stabilityai/sdxl-turbo"
AI_LLM_MODEL = "meta-llama/llama-3.1-8B-Instruct"


def offchain_segment(net: Any, index: int = 0) -> str:
    """What py-1.0 sends offchain: a SegData holding only the orchestrator's auth token."""
    info = net.net.orchestrators[index].orch.orchestrator_info()
    return base64.b64encode(pb.SegData(auth_token=info.auth_token).SerializeToString()).decode()


def signer_payment(
    net: Any, index: int = 0, manifest: str | None = None, state: Any = None
) -> dict[str, Any]:
    # Ticket params are bound to the sender that asks for them (go: the recipient rand hash covers it).
    info = net.net.orchestrators[index].orch.orchestrator_info(
        sender=net.net.signer.key.address_bytes
    )
    body: dict[str, Any] = {
        "orchestrator": base64.b64encode(info.SerializeToString()).decode(),
        "type": "lv2v",
    }
    if manifest is not None:
        body["ManifestID"] = manifest
    if state is not None:
        body["state"] = state
    r = httpx.post(f"{net.signer}/generate-live-payment", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def wait_until(predicate: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


# -- LV2V -------------------------------------------------------------------------------------------------


def test_lv2v_offchain_start_and_teardown(devnet_factory: Any) -> None:
    net = devnet_factory()
    url = net.orchestrators[0]
    with client() as c:
        r = c.post(
            f"{url}/live-video-to-video",
            headers={"Livepeer-Segment": offchain_segment(net), "Livepeer-Payment": ""},
            json={"model_id": "noop", "params": {}, "gateway_request_id": "g", "stream_id": "s"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        mid = body["manifest_id"]
        assert body["publish_url"] == f"{url}/ai/trickle/{mid}"
        assert body["subscribe_url"] == f"{url}/ai/trickle/{mid}-out"
        assert body["control_url"] == f"{url}/ai/trickle/{mid}-control"
        assert body["events_url"] == f"{url}/ai/trickle/{mid}-events"
        # Channels exist (a POST without seq only confirms existence) and events flow from the runner.
        assert c.post(body["control_url"]).status_code == 200
        event = c.get(f"{body['events_url']}/-2")
        assert event.status_code == 200
        assert json.loads(event.content)["type"] == "status"
        assert net.net.orchestrators[0].orch.lv2v_in_use == 1
        # Closing the publish channel ends the session: every channel goes away, capacity is released.
        assert c.delete(body["publish_url"]).status_code == 200
        assert wait_until(lambda: c.post(body["control_url"]).status_code == 404)
        assert wait_until(lambda: net.net.orchestrators[0].orch.lv2v_in_use == 0)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b'{"model_id": "no-such-model"}', 503)],
)
def test_lv2v_error_ladder_offchain(devnet: Any, body: bytes, status: int) -> None:
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/live-video-to-video",
            headers={"Livepeer-Segment": offchain_segment(devnet)},
            content=body,
        )
    assert r.status_code == status


@pytest.mark.parametrize("segment", [None, "%%%", base64.b64encode(b"\xff\xff").decode()])
def test_lv2v_bad_segment_is_403_even_offchain(devnet: Any, segment: str | None) -> None:
    headers = {} if segment is None else {"Livepeer-Segment": segment}
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/live-video-to-video",
            headers=headers,
            json={"model_id": "noop"},
        )
    assert r.status_code == 403


def test_lv2v_forged_auth_token_is_403(devnet: Any) -> None:
    token = pb.AuthToken(token=b"x" * 32, session_id="s", expiration=int(time.time()) + 600)
    seg = base64.b64encode(pb.SegData(auth_token=token).SerializeToString()).decode()
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/live-video-to-video",
            headers={"Livepeer-Segment": seg},
            json={"model_id": "noop"},
        )
    assert r.status_code == 403


def test_lv2v_onchain_payment_errors(devnet_onchain: Any) -> None:
    paid = signer_payment(devnet_onchain)
    url = f"{devnet_onchain.orchestrators[0]}/live-video-to-video"
    with client() as c:
        no_payment = c.post(
            url, headers={"Livepeer-Segment": paid["segCreds"]}, json={"model_id": "noop"}
        )
        bad_b64 = c.post(
            url,
            headers={"Livepeer-Segment": paid["segCreds"], "Livepeer-Payment": "%%"},
            json={"model_id": "noop"},
        )
        # Segment credentials signed by someone other than the payment's sender.
        seg = pb.SegData.FromString(base64.b64decode(paid["segCreds"]))
        seg.sig = EthKey.generate().sign_hash_of(b"other")
        forged = c.post(
            url,
            headers={
                "Livepeer-Segment": base64.b64encode(seg.SerializeToString()).decode(),
                "Livepeer-Payment": paid["payment"],
            },
            json={"model_id": "noop"},
        )
        # Tickets minted for orchestrator 1 are worthless at orchestrator 0.
        other = signer_payment(devnet_onchain, index=1)
        wrong_recipient = c.post(
            url,
            headers={"Livepeer-Segment": paid["segCreds"], "Livepeer-Payment": other["payment"]},
            json={"model_id": "noop"},
        )
    # No header is an empty payment (zero-address sender): the segment signature fails, 403
    # (go-livepeer server/ai_http.go:1052-1062); only an undecodable header is 402.
    assert no_payment.status_code == 403
    assert bad_b64.status_code == 402
    assert forged.status_code == 403
    assert wrong_recipient.status_code in (400, 403)


def test_lv2v_onchain_paid_session_and_payment_route(devnet_factory: Any) -> None:
    from livepeer.devnet import DevnetOptions

    net = devnet_factory(DevnetOptions(onchain=True))
    url = net.orchestrators[0]
    orch = net.net.orchestrators[0].orch
    paid = signer_payment(net)
    with client() as c:
        r = c.post(
            f"{url}/live-video-to-video",
            headers={"Livepeer-Segment": paid["segCreds"], "Livepeer-Payment": paid["payment"]},
            json={"model_id": "grayscale"},
        )
        assert r.status_code == 200, r.text
        mid = r.json()["manifest_id"]
        sender = net.info["signer_address"].lower()
        before = orch.balances.get((sender, mid))
        assert before > 0
        # The signer's state chain: its balance floor is one ticket's EV, not the fee (go-livepeer
        # server/segment_rpc.go:779-786), so right after the 60 s prepayment (2 tickets, 16.6M wei of
        # 20M) the next call still tops up with one ticket instead of answering 482.
        topup = httpx.post(
            f"{net.signer}/generate-live-payment",
            json={
                "orchestrator": base64.b64encode(
                    orch.orchestrator_info(
                        sender=net.net.signer.key.address_bytes
                    ).SerializeToString()
                ).decode(),
                "type": "lv2v",
                "state": paid["state"],
                "ManifestID": mid,
            },
        )
        assert topup.status_code == 200, topup.text
        topup_payment = pb.Payment.FromString(base64.b64decode(topup.json()["payment"]))
        assert len(topup_payment.ticket_sender_params) == 1
        # A payment carrying the manifest id lands on the session's account.
        again = signer_payment(net, manifest=mid)
        p = c.post(
            f"{url}/payment",
            headers={"Livepeer-Segment": again["segCreds"], "Livepeer-Payment": again["payment"]},
        )
        assert p.status_code == 200, p.text
        result = pb.PaymentResult.FromString(p.content)
        assert result.info.transcoder == url
        assert result.info.ticket_params.recipient == orch.key.address_bytes
        assert orch.balances.get((sender, mid)) > before
        # No Livepeer-Payment = an empty payment from the zero address: the segment signature check
        # fails (go-livepeer server/segment_rpc.go:293-310), 403 rather than 402.
        missing = c.post(f"{url}/payment", headers={"Livepeer-Segment": again["segCreds"]})
        assert missing.status_code == 403
        c.delete(r.json()["publish_url"])


# -- BYOC live streams ------------------------------------------------------------------------------------


def stream_header(
    capability: str, request: dict[str, Any], parameters: dict[str, Any] | None, job_id: str
) -> str:
    body = {
        "id": job_id,
        "request": json.dumps(request),
        "parameters": json.dumps(parameters) if parameters is not None else "",
        "capability": capability,
        "timeout_seconds": 30,
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


def test_byoc_stream_start_update_stop(devnet_factory: Any) -> None:
    net = devnet_factory()
    url = net.orchestrators[0]
    params = {
        "enable_video_ingress": True,
        "enable_video_egress": True,
        "enable_data_output": False,
    }
    with client() as c:
        r = c.post(
            f"{url}/ai/stream/start",
            headers={"Livepeer": stream_header("live-grayscale", {}, params, "st1")},
            json={"params": {}},
        )
        assert r.status_code == 200, r.text
        assert r.content == b""
        assert r.headers["X-Publish-Url"] == f"{url}/ai/trickle/st1"
        assert r.headers["X-Subscribe-Url"] == f"{url}/ai/trickle/st1-out"
        assert r.headers["X-Control-Url"] == f"{url}/ai/trickle/st1-control"
        assert r.headers["X-Events-Url"] == f"{url}/ai/trickle/st1-events"
        assert "X-Data-Url" not in r.headers
        assert "Livepeer-Balance" in r.headers
        update = c.post(
            f"{url}/ai/stream/update",
            headers={"Livepeer": stream_header("live-grayscale", {"stream_id": "st1"}, {}, "st1")},
            json={"params": {}},
        )
        assert update.status_code < 500
        stop = c.post(
            f"{url}/ai/stream/stop",
            headers={"Livepeer": stream_header("live-grayscale", {"stream_id": "st1"}, {}, "st1")},
        )
        assert stop.status_code == 200
        assert c.post(f"{url}/ai/trickle/st1-control").status_code == 404
        again = c.post(
            f"{url}/ai/stream/stop",
            headers={"Livepeer": stream_header("live-grayscale", {"stream_id": "st1"}, {}, "st1")},
        )
        # go-livepeer looks no stream up: the worker is asked to stop again (stream_orchestrator.go:304-353).
        assert again.status_code == 200


def test_byoc_stream_start_errors(devnet: Any, devnet_onchain: Any, job_header: Any) -> None:
    with client() as c:
        unknown = c.post(
            f"{devnet.orchestrators[0]}/ai/stream/start",
            headers={"Livepeer": stream_header("nope", {}, {}, "x")},
            json={},
        )
        bad_params = c.post(
            f"{devnet.orchestrators[0]}/ai/stream/start",
            headers={"Livepeer": job_header(None, "live-grayscale", parameters="{nope")},
            json={},
        )
        key = EthKey.generate()
        devnet_onchain.net.fund(key.address)
        low = c.post(
            f"{devnet_onchain.orchestrators[0]}/ai/stream/start",
            headers={"Livepeer": job_header(key, "live-grayscale", parameters="{}")},
            json={},
        )
    assert unknown.status_code == 400  # unknown capability is a setup error here (§7), not 503
    assert bad_params.status_code == 400
    assert low.status_code == 402


# -- AI batch routes --------------------------------------------------------------------------------------


def test_text_to_image_returns_a_png(devnet: Any) -> None:
    with client() as c:
        r = c.post(
            f"{devnet.orchestrators[0]}/text-to-image",
            headers={"Livepeer-Segment": offchain_segment(devnet)},
            json={"prompt": "a cat", "model_id": AI_T2I_MODEL, "width": 32, "height": 32},
        )
    assert r.status_code == 200, r.text
    image = r.json()["images"][0]
    data = image["url"]
    assert data.startswith("data:image/png;base64,")
    assert base64.b64decode(data.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")


def test_llm_streams_openai_chunks(devnet: Any) -> None:
    lines = []
    body = {
        "model": AI_LLM_MODEL,
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 16,
        "stream": True,
    }
    with (
        client() as c,
        c.stream(
            "POST",
            f"{devnet.orchestrators[0]}/llm",
            headers={"Livepeer-Segment": offchain_segment(devnet)},
            json=body,
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    # go-livepeer re-encodes the runner's chunks and stops after the finish reason: no [DONE] (ai_http.go:1711).
    assert json.loads(lines[-1][6:])["choices"][0]["finish_reason"] == "stop"
    chunk = json.loads(lines[0][6:])
    assert "choices" in chunk


def test_ai_route_onchain_requires_payment(devnet_onchain: Any) -> None:
    with client() as c:
        r = c.post(f"{devnet_onchain.orchestrators[0]}/text-to-image", json={"prompt": "x"})
        paid = signer_payment(devnet_onchain)
        ok = c.post(
            f"{devnet_onchain.orchestrators[0]}/text-to-image",
            headers={"Livepeer-Segment": paid["segCreds"], "Livepeer-Payment": paid["payment"]},
            json={"prompt": "x", "model_id": AI_T2I_MODEL, "width": 16, "height": 16},
        )
    assert r.status_code == 403
    assert ok.status_code == 200, ok.text


def test_ai_route_large_body_is_decoded_like_any_other(devnet: Any) -> None:
    """go-livepeer sets no request size limit on AI routes: 33 MiB of junk is a JSON error (400)."""
    with client() as c:
        r = c.post(f"{devnet.orchestrators[0]}/text-to-image", content=b"x" * (33 * 1024 * 1024))
    assert r.status_code == 400
    assert r.text == "invalid character 'x' looking for beginning of value\n"


def test_byoc_stream_onchain_paid_start_and_payment(
    devnet_factory: Any, job_header: Any, eth_address_header: Any
) -> None:
    from livepeer.client._signer import ticket_params_from_token
    from livepeer.client._tickets import make_payment
    from livepeer.devnet import DevnetOptions

    net = devnet_factory(DevnetOptions(onchain=True))
    url = net.orchestrators[0]
    key = EthKey.generate()
    net.net.fund(key.address)

    def payment() -> str:
        with client() as c:
            token = c.get(
                f"{url}/process/token",
                headers={
                    "Livepeer-Eth-Address": eth_address_header(key),
                    "Livepeer-Capability": "live-grayscale",
                },
            ).json()
        p = make_payment(
            ticket_params_from_token(token),
            sender=key.address_bytes,
            expected_price=(token["price"]["pricePerUnit"], token["price"]["pixelsPerUnit"]),
            nonces=[1],
            sign=key.sign_raw,
        )
        return base64.b64encode(p.SerializeToString()).decode()

    with client() as c:
        start = c.post(
            f"{url}/ai/stream/start",
            headers={
                "Livepeer": job_header(
                    key, "live-grayscale", parameters='{"enable_data_output": true}'
                ),
                "Livepeer-Payment": payment(),
            },
            json={"params": {}},
        )
        assert start.status_code == 200, start.text
        assert start.headers["X-Data-Url"] == f"{url}/ai/trickle/job-1-data"
        assert "X-Publish-Url" not in start.headers  # ingress not enabled
        first = int(start.headers["Livepeer-Balance"])
        assert first > 0
        paid = c.post(
            f"{url}/ai/stream/payment",
            headers={
                "Livepeer": job_header(key, "live-grayscale", request='{"stream_id": "job-1"}'),
                "Livepeer-Payment": payment(),
            },
        )
        assert paid.status_code == 200
        assert int(paid.headers["Livepeer-Balance"]) > first
        stop = c.post(
            f"{url}/ai/stream/stop",
            headers={
                "Livepeer": job_header(key, "live-grayscale", request='{"stream_id": "job-1"}')
            },
        )
        assert stop.status_code == 200


def test_lv2v_session_closes_when_credit_runs_out(devnet_factory: Any) -> None:
    from livepeer.devnet import DevnetOptions

    net = devnet_factory(DevnetOptions(onchain=True))
    orch = net.net.orchestrators[0].orch
    orch.live.lv2v_interval = 0.2  # debit often (go-livepeer: -livePaymentInterval, 5 s)
    paid = signer_payment(net)
    with client() as c:
        r = c.post(
            f"{net.orchestrators[0]}/live-video-to-video",
            headers={"Livepeer-Segment": paid["segCreds"], "Livepeer-Payment": paid["payment"]},
            json={"model_id": "noop"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        account = (net.info["signer_address"].lower(), body["manifest_id"])
        orch.balances.debit(account, orch.balances.get(account))  # credit now exactly 0
        assert c.post(body["control_url"]).status_code == 200
        # Debits happen on input segments: publish one, and the next debit closes every channel.
        assert c.post(f"{body['publish_url']}/0", content=b"\x47" * 188).status_code == 200
        assert wait_until(lambda: c.post(body["control_url"]).status_code == 404)
        assert c.post(body["events_url"]).status_code == 404
        assert orch.lv2v_in_use == 0
