"""Route ops driven by hand (sans-IO): what each route sends, without any network."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from livepeer.client import ConfigError
from livepeer.client._ops import Call, Deadline, Reply
from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.client._routes import Probe, Request, ai, ai_request, byoc, check_path
from livepeer.client._signer import Identity, Signer

OFFCHAIN = Identity("0x" + "00" * 20, "0x")


def first_call(op: Any) -> Call:
    step = next(op)
    assert isinstance(step, Call)
    return step


def info_bytes(transcoder: str) -> bytes:
    info = pb.OrchestratorInfo(transcoder=transcoder)
    info.auth_token.token = b"tok"
    info.auth_token.session_id = "sess"
    info.auth_token.expiration = 123
    return bytes(info.SerializeToString())


def test_ai_route_multipart_with_model_and_offchain_segment(tmp_path: Path) -> None:
    img = tmp_path / "in.png"
    img.write_bytes(b"PNG")
    probe = Probe("https://orch:1", "ai", ok=True, info=info_bytes("https://orch:1/"))
    body, model = ai.prepare("image-to-image", {"image": img, "prompt": "p"}, "m/1")
    req = Request("image-to-image", model, body, "rid", Deadline(30))
    call = first_call(ai.attempt(Signer(None, {}), OFFCHAIN, probe, req, force_payment=False))
    assert call.url == "https://orch:1/image-to-image"
    assert call.files is not None
    assert call.files["image"][0] == "in.png"
    assert call.data == {"prompt": "p", "model_id": "m/1", "num_images_per_prompt": "1"}
    seg = pb.SegData()
    seg.ParseFromString(base64.b64decode(call.headers["Livepeer-Segment"]))
    assert seg.auth_token.token == b"tok"
    assert seg.manifestId == b"rid"
    assert "Livepeer-Payment" not in call.headers


def test_ai_llm_stream_sets_stream_flag() -> None:
    probe = Probe("https://orch:1", "ai", ok=True, info=info_bytes("https://orch:1"))
    messages = [{"role": "user", "content": "hi"}]
    body, model = ai.prepare("llm", {"messages": messages}, None)
    req = Request("llm", model, body, "rid", Deadline(30), stream=True)
    call = first_call(ai.attempt(Signer(None, {}), OFFCHAIN, probe, req, force_payment=False))
    # go-livepeer reads `model` and requires `max_tokens` (ai_http.go:1506-1520); the gateway's defaults.
    assert call.json == {
        "messages": messages,
        "model": "meta-llama/llama-3.1-8B-Instruct",
        "max_tokens": 256,
        "stream": True,
    }
    assert call.stream
    assert call.headers["Accept"] == "text/event-stream"


def test_ai_probe_reads_price_and_capacity() -> None:
    info = pb.OrchestratorInfo(transcoder="https://o")
    info.price_info.pricePerUnit = 10
    info.price_info.pixelsPerUnit = 4
    m = info.capabilities.constraints.PerCapability[27].models["m"]
    m.capacity, m.capacityInUse = 2, 2
    reply = Reply(200, {}, info.SerializeToString(), "https://o", 0.01)
    p = ai.read_probe("https://o", "text-to-image", "m", reply)
    assert p.price == 2.5
    assert p.capacity == 0
    assert not p.ok


def test_billed_units_follow_the_orchestrator() -> None:
    """outPixels of handleAIRequest (ai_http.go:1402-1574), computed from the body the client sends."""
    units = ai_request.billed_units
    assert units("text-to-image", {"width": 64, "height": 32}) == 64 * 32
    assert units("text-to-image", {"num_images_per_prompt": 2}) == 2 * 512 * 512
    assert units("image-to-video", {}) == 576 * 1024 * 25
    assert units("llm", {"max_tokens": 7}) == 7
    assert units("text-to-speech", {"text": "héllo"}) == 5000  # runes, not bytes
    png = (
        b"\x89PNG\r\n\x1a\n"
        + b"\x00\x00\x00\rIHDR"
        + (640).to_bytes(4, "big")
        + (48).to_bytes(4, "big")
    )
    assert units("upscale", {"image": png}) == 640 * 48
    assert units("image-to-image", {"image": png, "num_images_per_prompt": 3}) == 3 * 640 * 48
    assert units("image-to-image", {"image": b"nope"}) is None


def test_byoc_credit_to_buy() -> None:
    # At least go's 120 s re-pay threshold (its orchestrator wants 60 s up front), else the job timeout.
    assert byoc.seconds_to_buy(30) == 120
    assert byoc.seconds_to_buy(300) == 300


def test_byoc_ticket_params_from_the_job_token() -> None:
    from livepeer.client._signer import ticket_params_from_token

    token = {
        "price": {"pricePerUnit": 1000, "pixelsPerUnit": 1},
        "service_addr": "https://orch:1",
        "ticket_params": {
            "recipient": base64.b64encode(b"\x01" * 20).decode(),
            "face_value": base64.b64encode(b"\x05").decode(),
            "expiration_params": {"creation_round": 7},
        },
    }
    params = ticket_params_from_token(token)
    assert params is not None
    assert params.recipient == b"\x01" * 20
    assert params.face_value == b"\x05"
    assert params.win_prob == b""
    assert params.expiration_params.creation_round == 7
    probe = Probe("https://orch:1", "byoc", ok=True, token=token, price=1000)
    assert byoc.is_onchain(probe)
    assert byoc.token_price(probe) == (1000, 1)
    assert not byoc.is_onchain(Probe("https://orch:1", "byoc", ok=True, token={"price": {}}))


def test_byoc_low_balance_detection() -> None:
    def reply(status: int, body: bytes) -> Reply:
        return Reply(status, {}, body, "u", 0)

    assert byoc.is_low_balance(reply(400, b"Insufficient balance for request"))
    assert byoc.is_low_balance(reply(402, b""))
    assert not byoc.is_low_balance(reply(400, b"Could not verify job creds"))


def test_byoc_path_goes_under_process_request_percent_encoded() -> None:
    probe = Probe("https://orch:1", "byoc", ok=True)
    req = Request("image-lab", None, {"x": 1}, "rid", Deadline(30), path="chat/r 1/ü")
    call = first_call(byoc.attempt(Signer(None, {}), OFFCHAIN, probe, req, force_payment=False))
    assert call.url == "https://orch:1/process/request/chat/r%201/%C3%BC"
    plain = Request("image-lab", None, {"x": 1}, "rid", Deadline(30))
    call = first_call(byoc.attempt(Signer(None, {}), OFFCHAIN, probe, plain, force_payment=False))
    assert call.url == "https://orch:1/process/request/"


@pytest.mark.parametrize(
    "path", ["a//b", "a/../b", "./a", "a?b=1", "a#b", "100%", "a\nb", "/lead", "trail/"]
)
def test_paths_that_cannot_reach_the_worker_are_refused_before_io(path: str) -> None:
    with pytest.raises(ConfigError, match="cannot reach the worker"):
        check_path("image-lab", path)


def test_built_in_pipelines_take_no_path() -> None:
    check_path("text-to-image", "")
    with pytest.raises(ConfigError, match="no sub-paths"):
        check_path("text-to-image", "x")


def test_a_list_of_files_is_one_part_per_file_under_one_name() -> None:
    probe = Probe("https://orch:1", "byoc", ok=True)
    req = Request("lab", None, {"extra": [b"a", b"bc"], "file": b"x", "n": 2}, "r", Deadline(30))
    call = first_call(byoc.attempt(Signer(None, {}), OFFCHAIN, probe, req, force_payment=False))
    assert call.data == {"n": "2"}
    assert [(name, part[1]) for name, part in call.files] == [  # type: ignore[misc]
        ("file", b"x"),
        ("extra", b"a"),
        ("extra", b"bc"),
    ]
