"""Built-in AI pipelines as go-livepeer serves and bills them (server/ai_http.go ``handleAIRequest`` at 176aa415).

Two halves: the devnet's error ladder seen with raw HTTP (status, plain-text body, dropped connection), and
the client through its public API against that devnet, offchain and on-chain (every paid request carries
tickets; bodies carry the fields and defaults go-livepeer reads). docs/fidelity.md ("Built-in AI pipelines") maps each test to
its upstream line.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import httpx
import pytest

from livepeer.client import APIStatusError, ConfigError, Gateway
from livepeer.client._proto import lp_rpc_pb2 as pb
from livepeer.devnet import DevnetOptions
from livepeer.devnet._ai import REQUIRED_EV, out_pixels
from livepeer.devnet.pytest_plugin import RunningDevnet, run_devnet

T2I_MODEL = "stabilityai/sdxl-turbo"
LLM_MODEL = "meta-llama/llama-3.1-8B-Instruct"
MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def offchain() -> Iterator[RunningDevnet]:
    with run_devnet(DevnetOptions(orchestrators=1)) as net:
        yield net


@pytest.fixture(scope="module")
def onchain() -> Iterator[RunningDevnet]:
    with run_devnet(DevnetOptions(onchain=True, orchestrators=1)) as net:
        yield net


def _orch(net: RunningDevnet) -> Any:
    return net.net.orchestrators[0].orch


def _b64(message: Any) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


def _segment(net: RunningDevnet, **fields: Any) -> str:
    """Offchain segment credentials: the orchestrator's auth token, nothing signed."""
    return _b64(pb.SegData(auth_token=_orch(net).tickets.auth_token(), **fields))


def _post(
    net: RunningDevnet,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    **kwargs: Any,
) -> httpx.Response:
    with httpx.Client(verify=False, timeout=30) as client:
        return client.request(method, net.orchestrators[0] + path, headers=headers or {}, **kwargs)


def _signed(net: RunningDevnet, in_pixels: int, state: Any = None) -> dict[str, Any]:
    """``/generate-live-payment`` without ``type`` (per-request AI), as the client calls it."""
    info = _orch(net).orchestrator_info(sender=net.net.signer.key.address_bytes)
    body: dict[str, Any] = {
        "orchestrator": _b64(info),
        "ManifestID": f"27_{T2I_MODEL}",
        "inPixels": in_pixels,
    }
    if state is not None:
        body["state"] = state
    with httpx.Client(timeout=10) as client:
        r = client.post(net.signer + "/generate-live-payment", json=body)
    return {"status": r.status_code, **(r.json() if r.content else {})}


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height)).save(out, format="PNG")
    return out.getvalue()


# -- the devnet's ladder (raw HTTP) -----------------------------------------------------------------------


def test_non_post_is_an_empty_200(offchain: RunningDevnet) -> None:
    """The OpenAPI validator's ErrorHandler only logs (ai_http.go:60-62): nothing is written."""
    r = _post(offchain, "/text-to-image", method="GET")
    assert (r.status_code, r.content) == (200, b"")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "EOF"),
        (b"{", "unexpected EOF"),
        (b"x", "invalid character 'x' looking for beginning of value"),
        (b"[]", "json: cannot unmarshal array into Go value of type worker.TextToImageParams"),
        (
            b'{"prompt": "p", "width": "wide"}',
            "json: cannot unmarshal string into Go struct field TextToImageParams.width of type int",
        ),
        (
            b'{"prompt": "p", "height": 1.5}',
            "json: cannot unmarshal number 1.5 into Go struct field TextToImageParams.height of type int",
        ),
    ],
)
def test_json_decode_errors_are_plain_text_400(
    offchain: RunningDevnet, body: bytes, message: str
) -> None:
    r = _post(offchain, "/text-to-image", content=body)
    assert r.status_code == 400
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == message + "\n"


def test_decode_runs_before_payment_and_credentials(offchain: RunningDevnet) -> None:
    r = _post(offchain, "/text-to-image", content=b"[]", headers={"Livepeer-Payment": "@@"})
    assert r.status_code == 400


def test_bad_payment_header_is_402(offchain: RunningDevnet) -> None:
    r = _post(
        offchain,
        "/text-to-image",
        json={"prompt": "p", "model_id": T2I_MODEL},
        headers={"Livepeer-Payment": "foo"},
    )
    assert r.status_code == 402
    assert r.text.startswith("base64 decode error: illegal base64 data at input byte")


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        (None, "missing auth token"),
        ("foo", "ErrorSegEncoding"),
        ("forged", "invalid auth token"),
        ("expired", "expired auth token"),
    ],
)
def test_offchain_requests_need_the_orchestrators_auth_token(
    offchain: RunningDevnet, segment: str | None, message: str
) -> None:
    """verifySegCreds runs offchain too (ai_http.go:1388); offchain only the signature is skipped."""
    headers = {}
    if segment == "foo":
        headers["Livepeer-Segment"] = "foo"
    elif segment == "forged":
        token = pb.AuthToken(token=b"x" * 32, session_id="s", expiration=2**40)
        headers["Livepeer-Segment"] = _b64(pb.SegData(auth_token=token))
    elif segment == "expired":
        book = _orch(offchain).tickets
        token = book.auth_token()
        token.expiration = 1
        token.token = book._token(token.session_id, 1)
        headers["Livepeer-Segment"] = _b64(pb.SegData(auth_token=token))
    r = _post(offchain, "/text-to-image", json={"prompt": "p"}, headers=headers)
    assert (r.status_code, r.text) == (403, message + "\n")


def test_missing_model_id_drops_the_connection(offchain: RunningDevnet) -> None:
    """``modelID = *v.ModelId`` on nil panics (ai_http.go:1406): no response reaches the client."""
    with pytest.raises(httpx.RemoteProtocolError):
        _post(
            offchain,
            "/text-to-image",
            json={"prompt": "p"},
            headers={"Livepeer-Segment": _segment(offchain)},
        )


def test_llm_reads_model_not_model_id(offchain: RunningDevnet) -> None:
    """runner.gen.go:289-297: ``model``; a body with only ``model_id`` panics like a missing one."""
    with pytest.raises(httpx.RemoteProtocolError):
        _post(
            offchain,
            "/llm",
            json={"model_id": LLM_MODEL, "messages": MESSAGES, "max_tokens": 8},
            headers={"Livepeer-Segment": _segment(offchain)},
        )


def test_llm_without_max_tokens_is_400(offchain: RunningDevnet) -> None:
    r = _post(
        offchain,
        "/llm",
        json={"model": LLM_MODEL, "messages": MESSAGES},
        headers={"Livepeer-Segment": _segment(offchain)},
    )
    assert (r.status_code, r.text) == (400, "MaxTokens not specified\n")


def test_unknown_model_has_no_capacity(offchain: RunningDevnet) -> None:
    r = _post(
        offchain,
        "/text-to-image",
        json={"prompt": "p", "model_id": "nobody/serves-this"},
        headers={"Livepeer-Segment": _segment(offchain)},
    )
    assert (r.status_code, r.text) == (503, "insufficient capacity\n")


def test_multipart_pipelines_decode_the_image_before_capacity(offchain: RunningDevnet) -> None:
    """image-to-image is routed on every orchestrator (ai_http.go:82); the image is decoded for its pixel
    count (ai_http.go:1435-1444) before capacity is checked (no runner here: 503)."""
    seg = {"Livepeer-Segment": _segment(offchain)}
    r = _post(offchain, "/image-to-image", json={"prompt": "p"}, headers=seg)
    assert (r.status_code, r.text) == (400, "request Content-Type isn't multipart/form-data\n")
    form = {"prompt": "p", "model_id": T2I_MODEL}
    r = _post(
        offchain, "/image-to-image", data=form, files={"image": ("x.png", b"nope")}, headers=seg
    )
    assert (r.status_code, r.text) == (400, "image: unknown format\n")
    r = _post(
        offchain,
        "/image-to-image",
        data={**form, "num_images_per_prompt": "two"},
        files={"image": ("x.png", _png(8, 8))},
        headers=seg,
    )
    assert r.status_code == 400
    assert "strconv.ParseInt" in r.text
    r = _post(
        offchain,
        "/image-to-image",
        data=form,
        files={"image": ("x.png", _png(8, 8))},
        headers=seg,
    )
    assert (r.status_code, r.text) == (503, "insufficient capacity\n")


def test_audio_is_timed_as_lpms_times_it_before_capacity(
    offchain: RunningDevnet, encode_audio: Callable[[str, str, float], bytes]
) -> None:
    """ai_http.go:1500-1505: CalculateAudioDuration (common/util.go:467-487, lpms GetCodecInfoBytes) or 400
    "Unable to calculate duration"; MP3 is timed (then: no runner here, 503), Ogg through a pipe is not."""
    seg = {"Livepeer-Segment": _segment(offchain)}
    form = {"model_id": "openai/whisper-large-v3", "metadata": '{"duration":"2"}'}
    for audio, expected in (
        (encode_audio("ogg", "libopus", 3.0), (400, "Unable to calculate duration\n")),
        (b"RIFF not audio", (400, "Unable to calculate duration\n")),
        (encode_audio("mp3", "libmp3lame", 2.5), (503, "insufficient capacity\n")),
    ):
        r = _post(offchain, "/audio-to-text", data=form, files={"audio": ("a", audio)}, headers=seg)
        assert (r.status_code, r.text) == expected
    assert out_pixels("audio-to-text", {"audio": encode_audio("flac", "flac", 3.5)}) == 3000


def test_llm_stream_is_re_encoded_and_stops_at_the_finish_reason(offchain: RunningDevnet) -> None:
    """ai_http.go:1711-1724: ``data: {json}`` per chunk, nothing after the chunk with a finish reason."""
    r = _post(
        offchain,
        "/llm",
        json={"model": LLM_MODEL, "messages": MESSAGES, "max_tokens": 8, "stream": True},
        headers={"Livepeer-Segment": _segment(offchain)},
    )
    assert r.status_code == 200
    events = [e for e in r.text.split("\n\n") if e]
    assert all(e.startswith("data: {") for e in events)
    last = json.loads(events[-1][6:])
    assert last["choices"][0]["finish_reason"] == "stop"
    assert "[DONE]" not in r.text


def test_onchain_request_without_payment_is_refused(onchain: RunningDevnet) -> None:
    """No ``Livepeer-Payment``: the sender is the zero address and the segment signature fails (403)."""
    seg = _signed(onchain, 512 * 512)["segCreds"]
    r = _post(
        onchain,
        "/text-to-image",
        json={"prompt": "p", "model_id": T2I_MODEL},
        headers={"Livepeer-Segment": seg},
    )
    assert (r.status_code, r.text) == (403, "ErrSegSig\n")


def test_onchain_bills_512x512_under_the_capability_model_key(onchain: RunningDevnet) -> None:
    """Without width/height the orchestrator bills 512x512 (ai_http.go:1411-1426) against the credit of
    ``"27_{model}"`` (ai_http.go:1578) at the price the tickets were made for."""
    orch = _orch(onchain)
    paid = _signed(onchain, 512 * 512)
    sender = "0x" + pb.Payment.FromString(base64.b64decode(paid["payment"])).sender.hex()
    key = (sender, f"27_{T2I_MODEL}")
    before = orch.balances.get(key)
    r = _post(
        onchain,
        "/text-to-image",
        json={"prompt": "p", "model_id": T2I_MODEL},
        headers={"Livepeer-Payment": paid["payment"], "Livepeer-Segment": paid["segCreds"]},
    )
    assert r.status_code == 200, r.text
    ppu, ppx = orch.base_price()
    assert orch.balances.get(key) - before == REQUIRED_EV - Fraction(ppu, ppx) * 512 * 512
    # The same tickets again: their sender nonces were seen (pm/recipient.go:369-393).
    r = _post(
        onchain,
        "/text-to-image",
        json={"prompt": "p", "model_id": T2I_MODEL, "width": 64, "height": 64},
        headers={"Livepeer-Payment": paid["payment"], "Livepeer-Segment": paid["segCreds"]},
    )
    assert r.status_code == 400
    assert r.text.startswith("invalid ticket senderNonce: already seen sender=0x")


def test_onchain_credit_below_one_ticket_is_400(onchain: RunningDevnet) -> None:
    """SufficientBalance wants one ticket's EV of credit (core/orchestrator.go:468-478, ai_http.go:1598)."""
    orch = _orch(onchain)
    paid = _signed(onchain, 1)
    sender = "0x" + pb.Payment.FromString(base64.b64decode(paid["payment"])).sender.hex()
    key = (sender, f"27_{T2I_MODEL}")
    orch.balances.debit(key, orch.balances.get(key) + REQUIRED_EV)  # sink the account to -1 ticket
    r = _post(
        onchain,
        "/text-to-image",
        json={"prompt": "p", "model_id": T2I_MODEL, "width": 8, "height": 8},
        headers={"Livepeer-Payment": paid["payment"], "Livepeer-Segment": paid["segCreds"]},
    )
    assert (r.status_code, r.text) == (400, "Insufficient balance\n")
    orch.balances.credit(key, 2 * REQUIRED_EV)


def test_signer_per_request_needs_pixels_and_answers_482_once_a_ticket_is_covered(
    onchain: RunningDevnet,
) -> None:
    """remote_signer.go:565-569 and :606-614 with segment_rpc.go:779-786 (floor = one ticket's EV)."""
    assert _signed(onchain, 0)["status"] == 400
    first = _signed(onchain, 1000)
    second = _signed(onchain, 1000, first["state"])
    assert second["status"] == 200  # balance EV-fee is under the one-ticket floor: pay again
    third = _signed(onchain, 1000, second["state"])
    assert third["status"] == 482  # 2 EV - 2 fee covers one ticket: no tickets
    assert third["error"]["message"] == "no tickets"


# -- the client through its public API ----------------------------------------------------------------------


def test_typed_wrapper_runs_without_a_model_id(offchain: RunningDevnet) -> None:
    with Gateway(token=offchain.token) as gw:
        out = gw.capabilities.text_to_image.run(prompt="a cat", width=32, height=32)
    assert len(out.images) == 1
    assert out.images[0].url.read().startswith(b"\x89PNG")


def test_generic_run_fills_the_gateway_defaults(offchain: RunningDevnet) -> None:
    """No model, no width/height: the Go gateway's default model and 512x512 (ai_process.go:32, 213-229)."""
    with Gateway(token=offchain.token) as gw:
        out: Any = gw.run("text-to-image", input={"prompt": "a dog"})
        png = out["images"][0]["url"].read()
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size == (512, 512)


def test_llm_run_sends_model_and_max_tokens(offchain: RunningDevnet) -> None:
    with Gateway(token=offchain.token) as gw:
        out: Any = gw.run("llm", input={"messages": MESSAGES})
        assert out["model"] == LLM_MODEL
        typed = gw.capabilities.llm.run(messages=MESSAGES)  # type: ignore[arg-type]
        assert typed.model == LLM_MODEL
        with pytest.raises(ConfigError, match="model_id"):
            gw.run("llm", input={"messages": MESSAGES, "model_id": LLM_MODEL})
        with pytest.raises(ConfigError, match="messages"):
            gw.run("llm", input={"max_tokens": 3})


def test_llm_stream_ends_without_done(offchain: RunningDevnet) -> None:
    with Gateway(token=offchain.token) as gw, gw.stream("llm", input={"messages": MESSAGES}) as s:
        chunks = [e.json() for e in s]
    assert chunks
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]


def test_a_model_mismatch_is_a_config_error(offchain: RunningDevnet) -> None:
    with Gateway(token=offchain.token) as gw, pytest.raises(ConfigError, match="disagree"):
        gw.run("text-to-image", model="a/b", input={"prompt": "p", "model_id": "c/d"})


def test_every_paid_request_carries_tickets(onchain: RunningDevnet) -> None:
    """Sequential paid calls to one orchestrator: the third meets a signer 482 and must still pay."""
    signer = onchain.net.signer
    answers = _orch(onchain).ai.answers
    refused = sum(n for status, n in answers.items() if status != 200)
    with Gateway(token=onchain.token) as gw:
        for i in range(5):
            before = signer.calls
            out = gw.capabilities.text_to_image.run(prompt=f"paid {i}", width=16, height=16)
            assert len(out.images) == 1
            assert signer.calls > before  # each request asked the signer for tickets
    # None was refused on the way (a new chain on used ticket parameters would be: nonce replay).
    assert sum(n for status, n in answers.items() if status != 200) == refused


def test_paid_llm_bills_max_tokens(onchain: RunningDevnet) -> None:
    orch = _orch(onchain)
    with Gateway(token=onchain.token) as gw:
        gw.run("llm", input={"messages": MESSAGES, "max_tokens": 7})
    sender = onchain.net.signer.key.address.lower()
    balance = orch.balances.get((sender, f"33_{LLM_MODEL}"))
    ppu, ppx = orch.base_price()
    assert balance % REQUIRED_EV == (REQUIRED_EV - Fraction(ppu, ppx) * 7) % REQUIRED_EV


def test_onchain_orchestrator_refuses_an_unpaid_request_through_the_client(
    onchain: RunningDevnet,
) -> None:
    """Without a signer nothing is paid: the on-chain orchestrator refuses the unsigned probe already."""
    from livepeer.client import NoOrchestratorError, PaymentError

    with (
        Gateway(orch_url=onchain.orchestrators) as gw,
        pytest.raises((PaymentError, NoOrchestratorError, APIStatusError)) as info,
    ):
        gw.run("text-to-image", input={"prompt": "free?"})
    # go-livepeer server/rpc.go:679-685: "orchestrator req sig check failed".
    assert "sig check failed" in str(info.value) or "signer_url" in str(info.value)


def test_a_short_account_is_paid_again_once(onchain: RunningDevnet) -> None:
    """The orchestrator's credit fell below one ticket (it billed more than the signer knew): the 400
    "Insufficient balance" is answered once with a new state chain (D-ai-1)."""
    orch = _orch(onchain)
    key = (onchain.net.signer.key.address.lower(), f"27_{T2I_MODEL}")
    with Gateway(token=onchain.token) as gw:
        gw.capabilities.text_to_image.run(prompt="first", width=8, height=8)
        orch.balances.debit(key, orch.balances.get(key) + REQUIRED_EV / 2)  # credit: -EV/2
        out = gw.capabilities.text_to_image.run(prompt="second", width=8, height=8)
    assert len(out.images) == 1
    assert orch.balances.get(key) >= REQUIRED_EV / 2 - 1


def test_runner_failure_is_500_and_releases_capacity(offchain: RunningDevnet) -> None:
    """ai_http.go:1618-1627: the worker's error text, 500; the reserved capacity is given back."""
    orch = _orch(offchain)
    orch.faults.worker_dead = True
    try:
        r = _post(
            offchain,
            "/text-to-image",
            json={"prompt": "p", "model_id": T2I_MODEL},
            headers={"Livepeer-Segment": _segment(offchain)},
        )
    finally:
        orch.faults.worker_dead = False
    assert r.status_code == 500
    assert r.text.startswith("text-to-image container")
    assert orch.ai.in_use.get(("text-to-image", T2I_MODEL), 0) == 0


def test_wrapper_docstrings_name_the_default_model() -> None:
    """schemas carry x-livepeer-default-model (importer table from server/ai_process.go:32-41)."""
    from livepeer.capabilities.llm import Llm
    from livepeer.capabilities.text_to_image import TextToImage

    assert "``stabilityai/sdxl-turbo``" in (TextToImage.run.__doc__ or "")
    assert f"``{LLM_MODEL}``" in (Llm.run.__doc__ or "")
