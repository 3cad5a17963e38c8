"""Paid built-in AI requests (``gw.run("text-to-image", ...)``) against a scripted gRPC+HTTPS orchestrator and
signer: the signer's 480 (fresh OrchestratorInfo over gRPC, same state chain), 482 (a new chain on fresh ticket
parameters), 481/400 (the chain is dropped), the repay on "Insufficient balance", and what the request
carries. Public API only."""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from livepeer.client import (
    APIStatusError,
    Gateway,
    PaymentError,
    SignerError,
)
from livepeer.client._proto import lp_rpc_pb2 as pb

from .conftest import TEXT_TO_IMAGE_CAP, ScriptedOrch, ScriptedSigner, Servers

LLM_CAP = 33
IMAGE_TO_IMAGE_CAP = 28
AUDIO_TO_TEXT_CAP = 31

T2I = "text-to-image"
INPUT = {"prompt": "a cat", "width": 64, "height": 32}
OUT = {"images": [{"url": "/stream/1.png", "seed": 1, "nsfw": False}]}


def _orch(servers: Servers, *, price: int = 3, reply: Any = None) -> ScriptedOrch:
    orch = servers.orch(price=price, models={TEXT_TO_IMAGE_CAP: {"m1": 4}})
    orch.routes[("POST", f"/{T2I}")] = reply or (lambda req, body: JSONResponse(OUT))
    return orch


def _gw(orch: ScriptedOrch, signer: ScriptedSigner | None) -> Gateway:
    return Gateway(orch_url=[orch.url], signer_url=signer.url if signer else None, max_retries=0)


def _run(gw: Gateway) -> Any:
    return gw.run(T2I, input=INPUT, model="m1")


def _payments(orch: ScriptedOrch) -> list[bytes]:
    return [
        base64.b64decode(s.headers["livepeer-payment"]) for s in orch.requests("POST", f"/{T2I}")
    ]


def test_a_paid_request_carries_tickets_for_its_pixels(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer()
    with _gw(orch, signer) as gw:
        _run(gw)
    (body,) = signer.bodies
    assert body["inPixels"] == 64 * 32
    assert body["ManifestID"] == f"{TEXT_TO_IMAGE_CAP}_m1"
    assert "type" not in body
    assert signer.infos() == [orch.info(1)]
    (req,) = orch.requests("POST", f"/{T2I}")
    assert base64.b64decode(req.headers["livepeer-payment"]) == b"pay-1"
    assert base64.b64decode(req.headers["livepeer-segment"]) == b"seg-1"
    assert orch.info_calls == 1


def test_the_next_request_continues_the_chain_on_its_ticket_params(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer()
    with _gw(orch, signer) as gw:
        _run(gw)
        _run(gw)
    assert orch.info_calls == 1
    assert signer.infos() == [orch.info(1), orch.info(1)]
    assert "state" not in signer.bodies[0]
    assert signer.bodies[1]["state"]["State"] == base64.b64encode(b"s1").decode()


def test_a_480_fetches_fresh_orchestrator_info_and_keeps_the_state(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[200, 480])
    with _gw(orch, signer) as gw:
        _run(gw)
        _run(gw)
    assert orch.info_calls == 2  # the probe, then one refresh
    assert signer.infos() == [orch.info(1), orch.info(1), orch.info(2)]
    assert signer.bodies[2]["state"]["State"] == base64.b64encode(b"s1").decode()
    assert _payments(orch) == [b"pay-1", b"pay-3"]


def test_the_refreshed_info_is_the_chain_s_from_then_on(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[480])
    with _gw(orch, signer) as gw:
        _run(gw)
        _run(gw)
    assert signer.infos() == [orch.info(1), orch.info(2), orch.info(2)]
    assert orch.info_calls == 2


def test_three_refreshes_then_the_gateway_re_probes(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[480, 480, 480, 480])
    with _gw(orch, signer) as gw:
        _run(gw)
    infos = signer.infos()
    assert len(infos) == 5
    # The route refreshed three times (infos 2-4), then gave the 480 to the gateway, which re-probed.
    assert infos[:4] == [orch.info(1), orch.info(2), orch.info(3), orch.info(4)]
    assert orch.info_calls == 5
    assert _payments(orch) == [b"pay-5"]


def test_a_482_starts_a_new_chain_on_fresh_ticket_params(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[200, 482])
    with _gw(orch, signer) as gw:
        _run(gw)
        _run(gw)
    assert orch.info_calls == 2
    assert signer.infos() == [orch.info(1), orch.info(1), orch.info(2)]
    assert "state" not in signer.bodies[2]  # the old chain was dropped
    assert signer.bodies[2]["inPixels"] == 64 * 32
    assert signer.bodies[2]["ManifestID"] == f"{TEXT_TO_IMAGE_CAP}_m1"
    assert _payments(orch) == [b"pay-1", b"pay-3"]


def test_a_482_on_the_new_chain_too_is_a_payment_error(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[482, 482])
    with _gw(orch, signer) as gw, pytest.raises(PaymentError) as info:
        _run(gw)
    assert str(info.value) == "the signer answered 482 (no tickets) for a new state chain"
    assert orch.requests("POST", f"/{T2I}") == []


def test_a_signer_ceiling_481_drops_the_chain_before_the_retry_round(servers: Servers) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[200, 481])
    with Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=1) as gw:
        _run(gw)
        _run(gw)  # 481: this orchestrator is passed over, then re-probed in the next round
    retry = signer.bodies[2]
    assert "state" not in retry  # a new chain
    assert signer.infos()[2] == orch.info(2)
    assert _payments(orch) == [b"pay-1", b"pay-3"]


@pytest.mark.parametrize(("status", "dropped"), [(400, True), (500, False)])
def test_a_refusing_signer_drops_the_chain_only_when_it_is_unusable(
    servers: Servers, status: int, dropped: bool
) -> None:
    orch = _orch(servers)
    signer = servers.signer(statuses=[200, status])
    with _gw(orch, signer) as gw:
        _run(gw)
        with pytest.raises(SignerError) as info:
            _run(gw)
        assert info.value.status_code == status
        _run(gw)
    third = signer.bodies[2]
    if dropped:
        # A new chain: no state, and fresh ticket params (the probe's were used by the old chain).
        assert "state" not in third
        assert signer.infos()[2] == orch.info(2)
    else:
        assert third["state"]["State"] == base64.b64encode(b"s1").decode()
        assert signer.infos()[2] == orch.info(1)


@pytest.mark.parametrize(
    "text", [b"Insufficient balance for request", b"Could not pay: invalid ticket senderNonce 3"]
)
def test_a_lost_payment_is_repaid_once_on_a_new_chain(servers: Servers, text: bytes) -> None:
    replies = [PlainTextResponse(text.decode(), status_code=400)]

    def reply(req: Request, body: bytes) -> Response:
        return replies.pop() if replies else JSONResponse(OUT)

    orch = _orch(servers, reply=reply)
    signer = servers.signer()
    with _gw(orch, signer) as gw:
        assert _run(gw) is not None
    assert len(signer.bodies) == 2
    assert "state" not in signer.bodies[1]
    assert signer.infos() == [orch.info(1), orch.info(2)]
    assert _payments(orch) == [b"pay-1", b"pay-2"]


def test_a_second_lost_payment_is_returned_as_the_error(servers: Servers) -> None:
    orch = _orch(
        servers, reply=lambda req, body: PlainTextResponse("Insufficient balance", status_code=400)
    )
    signer = servers.signer()
    with _gw(orch, signer) as gw, pytest.raises(APIStatusError) as info:
        _run(gw)
    assert info.value.status_code == 400
    assert len(orch.requests("POST", f"/{T2I}")) == 2


@pytest.mark.parametrize(
    "text",
    [
        b"bad request",
        b"  Insufficient balance",
        # only the first 200 bytes are searched: this phrase ends at byte 201
        b"x" * 175 + b"invalid ticket senderNonce",
    ],
)
def test_other_400s_are_not_repaid(servers: Servers, text: bytes) -> None:
    orch = _orch(servers, reply=lambda req, body: Response(text, status_code=400))
    signer = servers.signer()
    with _gw(orch, signer) as gw, pytest.raises(APIStatusError):
        _run(gw)
    assert len(orch.requests("POST", f"/{T2I}")) == 1
    assert len(signer.bodies) == 1


def test_an_unpaid_insufficient_balance_is_not_repaid(servers: Servers) -> None:
    orch = _orch(
        servers,
        price=0,
        reply=lambda req, body: PlainTextResponse("Insufficient balance", status_code=400),
    )
    with _gw(orch, None) as gw, pytest.raises(APIStatusError):
        _run(gw)
    assert len(orch.requests("POST", f"/{T2I}")) == 1


def test_an_unpaid_request_carries_the_auth_token_only(servers: Servers) -> None:
    orch = _orch(servers, price=0)
    signer = servers.signer()
    with _gw(orch, signer) as gw:
        _run(gw)
    assert signer.bodies == []
    (req,) = orch.requests("POST", f"/{T2I}")
    assert "livepeer-payment" not in req.headers
    seg = pb.SegData()
    seg.ParseFromString(base64.b64decode(req.headers["livepeer-segment"]))
    assert seg.auth_token.token == b"tok-1"
    assert seg.manifestId.decode() == req.headers["x-request-id"]


def test_a_priced_request_without_signer_is_refused(servers: Servers) -> None:
    orch = _orch(servers)
    with _gw(orch, None) as gw, pytest.raises(PaymentError) as info:
        _run(gw)
    assert str(info.value) == f"{orch.url} charges for {T2I}: a signer_url is needed to pay for it"
    assert orch.requests("POST", f"/{T2I}") == []


def test_a_signer_that_keeps_asking_for_a_refresh_is_given_up_on(servers: Servers) -> None:
    """Each attempt refreshes three times (four payments), the gateway re-probes three times: 16 in all."""
    orch = _orch(servers)
    signer = servers.signer(statuses=[480] * 40)
    with _gw(orch, signer) as gw, pytest.raises(SignerError) as info:
        _run(gw)
    assert info.value.status_code == 480
    assert len(signer.bodies) == 16
    assert orch.requests("POST", f"/{T2I}") == []


@pytest.mark.parametrize("first", [480, 482])
def test_ticket_params_a_chain_used_are_not_reused_by_a_new_chain(
    servers: Servers, first: int
) -> None:
    """The OrchestratorInfo fetched by a 480 refresh or for a 482 new chain counts as used: when a later
    probe hands the same ticket parameters back, a new chain fetches fresh ones (a new chain restarts
    sender nonces, which the orchestrator refuses under a recipientRandHash it has seen them for)."""
    orch = _orch(servers)
    orch.answers = [1, 2, 2, 3]  # the re-probe after the 481 answers the refreshed info again
    signer = servers.signer(statuses=[first, 200, 481, 200])
    with Gateway(orch_url=[orch.url], signer_url=signer.url, max_retries=1) as gw:
        _run(gw)  # paid with info 2 (after the refresh, or on the new chain)
        _run(gw)  # 481: chain dropped, orchestrator passed over, re-probed in the next round
    assert signer.infos()[1] == orch.info(2)
    assert signer.infos()[3] == orch.info(3)  # not info 2 again
    assert orch.info_calls == 4


def test_a_price_under_one_wei_per_pixel_is_paid(servers: Servers) -> None:
    orch = servers.orch(price=1, pixels=2, models={TEXT_TO_IMAGE_CAP: {"m1": 4}})
    orch.routes[("POST", f"/{T2I}")] = lambda req, body: JSONResponse(OUT)
    signer = servers.signer()
    with _gw(orch, signer) as gw:
        _run(gw)
    assert len(signer.bodies) == 1


def test_a_request_whose_units_are_unknown_buys_one_unit(servers: Servers) -> None:
    orch = servers.orch(price=3, models={IMAGE_TO_IMAGE_CAP: {"m1": 4}})
    orch.routes[("POST", "/image-to-image")] = lambda req, body: JSONResponse(OUT)
    signer = servers.signer()
    with _gw(orch, signer) as gw:
        gw.run("image-to-image", input={"prompt": "p", "image": b"not an image"}, model="m1")
    (body,) = signer.bodies
    assert body["inPixels"] == 1


def _audio_orch(servers: Servers) -> ScriptedOrch:
    orch = servers.orch(price=3, models={AUDIO_TO_TEXT_CAP: {"m1": 4}})
    orch.routes[("POST", "/audio-to-text")] = lambda req, body: JSONResponse(
        {"text": "", "chunks": []}
    )
    return orch


def test_audio_is_paid_for_by_the_second_and_its_duration_is_sent(
    servers: Servers, encode_audio: Callable[[str, str, float], bytes]
) -> None:
    orch = _audio_orch(servers)
    signer = servers.signer()
    with _gw(orch, signer) as gw:
        gw.run("audio-to-text", input={"audio": encode_audio("mp3", "libmp3lame", 2.5)}, model="m1")
    (body,) = signer.bodies
    assert body["inPixels"] == 2000  # ai_http.go:1500-1505: whole seconds x 1000
    assert body["ManifestID"] == f"{AUDIO_TO_TEXT_CAP}_m1"
    (req,) = orch.requests("POST", "/audio-to-text")
    assert b'name="metadata"\r\n\r\n{"duration":"2"}\r\n' in req.body


def test_paid_audio_whose_duration_is_unknown_here_is_not_sent(
    servers: Servers,
    encode_audio: Callable[[str, str, float], bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mp3 = encode_audio("mp3", "libmp3lame", 2.5)
    monkeypatch.setitem(sys.modules, "av", None)  # no PyAV: an MP3 cannot be timed
    orch = _audio_orch(servers)
    signer = servers.signer()
    with _gw(orch, signer) as gw, pytest.raises(PaymentError, match="install PyAV"):
        gw.run("audio-to-text", input={"audio": mp3}, model="m1")
    assert signer.bodies == []
    assert orch.requests("POST", "/audio-to-text") == []
    # Free, it goes: the orchestrator and its runner time it themselves.
    free = servers.orch(price=0, models={AUDIO_TO_TEXT_CAP: {"m1": 4}})
    free.routes[("POST", "/audio-to-text")] = lambda req, body: JSONResponse({"text": ""})
    with _gw(free, None) as gw:
        gw.run("audio-to-text", input={"audio": mp3}, model="m1")
    (req,) = free.requests("POST", "/audio-to-text")
    assert b'name="metadata"' not in req.body


def test_only_streamed_llm_requests_ask_for_a_stream(servers: Servers) -> None:
    orch = servers.orch(price=0, models={LLM_CAP: {"m1": 4}})
    orch.routes[("POST", "/llm")] = lambda req, body: JSONResponse(
        {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}
    )
    with _gw(orch, None) as gw:
        gw.run("llm", input={"messages": [{"role": "user", "content": "hi"}]}, model="m1")
    (req,) = orch.requests("POST", "/llm")
    assert "stream" not in req.json()
    assert req.headers.get("accept") != "text/event-stream"
