"""Behaviour of the generated wrappers against a recording fake Gateway (no network)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import livepeer.capabilities as lc
from livepeer.capabilities import Capabilities, InputValidationError, OutputValidationError
from livepeer.client import ValidationError


def caps(gateway: Any) -> Capabilities:
    return Capabilities(gateway)


def test_run_sends_validated_payload_and_model(gateway: Any) -> None:
    gateway.result = {"images": [{"url": "data:,x", "seed": 7, "nsfw": False}]}
    out = caps(gateway).text_to_image.run(prompt="a cat", model="m/1", seed=3, timeout=5.0)
    ((verb, name, kwargs),) = gateway.calls
    assert (verb, name) == ("run", "text-to-image")
    assert kwargs["model"] == "m/1"
    assert kwargs["timeout"] == 5.0
    assert kwargs["input"]["prompt"] == "a cat"
    assert kwargs["input"]["seed"] == 3
    assert kwargs["input"]["height"] == 512  # schema default (the Go gateway's), sent explicitly
    assert out.images[0].seed == 7


def test_optional_without_default_is_omitted_and_empty_model_is_none(gateway: Any) -> None:
    gateway.result = {"images": []}
    caps(gateway).text_to_image.run(prompt="x", model="")
    kwargs = gateway.calls[0][2]
    assert "seed" not in kwargs["input"]
    assert kwargs["model"] is None


@pytest.mark.parametrize("keyword", ["model", "model_id"])
def test_model_and_its_alias_model_id_reach_the_wire_field_model_id(
    gateway: Any, keyword: str
) -> None:
    # `model=` is the verbs' spelling; `model_id=` (go-livepeer's request field) stays an alias.
    gateway.result = {"images": []}
    caps(gateway).text_to_image.run(prompt="x", **{keyword: "m/1"})
    caps(gateway).image_to_image.run(prompt="x", image=b"\x89PNG", **{keyword: "m/2"})
    gateway.result = {"audio": {"url": "data:,x"}}
    caps(gateway).text_to_speech.run(text="hi", **{keyword: "m/3"})
    sent = [(kwargs["input"]["model_id"], kwargs["model"]) for _, _, kwargs in gateway.calls]
    assert sent == [("m/1", "m/1"), ("m/2", "m/2"), ("m/3", "m/3")]
    assert all("model" not in kwargs["input"] for _, _, kwargs in gateway.calls)


def test_model_and_model_id_agreeing_is_accepted_and_neither_sends_the_default(
    gateway: Any,
) -> None:
    gateway.result = {"images": []}
    caps(gateway).text_to_image.run(prompt="x", model="m", model_id="m")
    caps(gateway).text_to_image.run(prompt="x")
    first, second = (kwargs for _, _, kwargs in gateway.calls)
    assert (first["input"]["model_id"], first["model"]) == ("m", "m")
    assert (second["input"]["model_id"], second["model"]) == ("", None)  # schema default, sent


@pytest.mark.parametrize(("model", "model_id"), [("a", "b"), ("", "b"), ("a", "")])
def test_conflicting_model_and_model_id_are_refused_before_any_call(
    gateway: Any, model: str, model_id: str
) -> None:
    with pytest.raises(
        InputValidationError, match="model: conflicts with its alias model_id"
    ) as info:
        caps(gateway).text_to_image.run(prompt="x", model=model, model_id=model_id)
    assert isinstance(info.value, ValidationError)
    assert gateway.calls == []


@pytest.mark.anyio
async def test_conflicting_model_and_model_id_are_refused_by_the_async_twin(gateway: Any) -> None:
    with pytest.raises(InputValidationError, match="model_id"):
        await caps(gateway).audio_to_text.run_async(audio=b"x", model="a", model_id="b")
    assert gateway.calls == []


def test_validation_happens_before_any_call_and_names_field_and_constraint(gateway: Any) -> None:
    with pytest.raises(InputValidationError) as info:
        caps(gateway).token_stream.stream(text="hi", delay_ms=-5)
    assert gateway.calls == []
    message = str(info.value)
    assert "delay_ms" in message
    assert "ge=0" in message
    assert info.value.errors[0]["type"] == "greater_than_equal"
    assert isinstance(info.value, ValueError)


def test_wrong_type_is_rejected(gateway: Any) -> None:
    with pytest.raises(ValueError, match="height"):
        caps(gateway).text_to_image.run(prompt="x", model="", height="tall")  # type: ignore[arg-type]
    assert gateway.calls == []


@pytest.mark.parametrize("value", [b"\x89PNG", Path("picture.png"), io.BytesIO(b"abc")])
def test_file_inputs_pass_through_unchanged(gateway: Any, value: object) -> None:
    gateway.result = {"images": []}
    caps(gateway).image_to_image.run(prompt="x", image=value, model="")  # type: ignore[arg-type]
    assert gateway.calls[0][2]["input"]["image"] is value


def test_str_is_not_a_file(gateway: Any) -> None:
    with pytest.raises(InputValidationError, match="image"):
        caps(gateway).image_to_image.run(prompt="x", image="picture.png", model="")  # type: ignore[arg-type]
    assert gateway.calls == []


def test_media_url_object_is_kept_as_is(gateway: Any) -> None:
    marker = object()  # the runtime hands a FileOutput; the model must not convert it
    gateway.result = {"audio": {"url": marker}}
    out = caps(gateway).text_to_speech.run(model="", text="hi")
    assert out.audio.url is marker


def test_outputs_allow_unknown_fields(gateway: Any) -> None:
    gateway.result = {"original": "ab", "reversed": "ba", "new_field": 1}
    out = caps(gateway).text_reversal.run(text="ab")
    assert out.reversed == "ba"
    assert out.model_extra == {"new_field": 1}


def test_output_not_matching_schema_raises(gateway: Any) -> None:
    gateway.result = {"original": "ab"}
    with pytest.raises(OutputValidationError, match="reversed"):
        caps(gateway).text_reversal.run(text="ab")


def test_llm_run_and_stream_flip_the_stream_switch(gateway: Any) -> None:
    chunk = {
        "id": "c1",
        "model": "m",
        "created": 1,
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}],
    }
    gateway.result = {
        **chunk,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    }
    llm = caps(gateway).llm
    msgs = [lc.llm.LLMMessage(role="user", content="hello")]
    assert llm.run(messages=msgs).choices[0].message is not None
    gateway.events = [json.dumps(chunk)]
    with llm.stream(messages=msgs, model="m") as events:
        got = list(events)
    assert [c.choices[0].delta.content for c in got if c.choices[0].delta] == ["hi"]
    assert gateway.calls[0][2]["input"]["stream"] is False
    assert gateway.calls[1][2]["input"]["stream"] is True
    assert gateway.calls[1][2]["model"] == "m"
    assert gateway.calls[1][2]["input"]["messages"] == [{"role": "user", "content": "hello"}]


@pytest.mark.anyio
async def test_async_twins(gateway: Any) -> None:
    gateway.result = {"original": "a", "reversed": "a"}
    out = await caps(gateway).text_reversal.run_async(text="a")
    assert out.original == "a"
    gateway.events = [json.dumps({"index": 0, "token": "hi"})]
    async with caps(gateway).token_stream.stream_async(text="hi") as events:
        tokens = [t.token async for t in events]
    assert tokens == ["hi"]
    assert [c[0] for c in gateway.calls] == ["run_async", "stream_async"]


def test_stream_event_not_matching_schema_raises(gateway: Any) -> None:
    gateway.events = [json.dumps({"index": "zero"})]
    with pytest.raises(OutputValidationError):
        list(caps(gateway).token_stream.stream(text="hi"))


def test_live_passes_model_and_params(gateway: Any) -> None:
    caps(gateway).live_video_to_video.live(model="noop", params={"strength": 1}, stream_id="s")
    verb, name, kwargs = gateway.calls[0]
    assert (verb, name) == ("live", "live-video-to-video")
    assert kwargs == {
        "model": "noop",
        "params": {"strength": 1},
        "request_id": None,
        "stream_id": "s",
    }


def test_untyped_handle(gateway: Any) -> None:
    gateway.result = {"anything": True}
    handle = caps(gateway)["no-schema-yet"]
    assert handle.run(input={"a": 1}, model="x") == {"anything": True}
    assert gateway.calls[0] == (
        "run",
        "no-schema-yet",
        {"input": {"a": 1}, "model": "x", "timeout": None},
    )
    assert handle.name == "no-schema-yet"


def test_index_lists_names_and_caches_wrappers(gateway: Any) -> None:
    c = caps(gateway)
    assert "text-to-image" in c
    assert "nope" not in c
    assert set(c.names) >= {"llm", "text-to-image", "live-video-to-video", "text-reversal"}
    assert c.llm is c.llm


def test_capability_modules_load_on_first_use() -> None:
    code = (
        "import json, sys, livepeer.capabilities as lc\n"
        "mods = lambda: sorted(m for m in sys.modules if m.startswith('livepeer.capabilities.'))\n"
        "before = mods()\n"
        "lc.Capabilities(object()).text_to_image\n"
        "print(json.dumps([before, mods(), 'livepeer.client' in sys.modules]))\n"
    )
    via_gateway = (
        "import json, sys\n"
        "from livepeer.client import Gateway\n"
        "gw = Gateway(orch_url='https://127.0.0.1:1')\n"
        "eager = sorted(m for m in sys.modules if m.startswith('livepeer.capabilities')\n"
        "               or m in ('livepeer.client._typed', 'pydantic'))\n"
        "caps = gw.capabilities\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('livepeer.capabilities'))\n"
        "caps.llm\n"
        "print(json.dumps([eager, loaded, 'livepeer.capabilities.llm' in sys.modules,\n"
        "                  caps is gw.capabilities]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", via_gateway], capture_output=True, text=True, check=True, timeout=60
    )
    # The runtime never imports the generated package (nor its own typed runtime, nor pydantic) before
    # gw.capabilities is used (docs/decisions.md D-arch-codegen); the index loads no capability module.
    assert json.loads(out.stdout) == [[], ["livepeer.capabilities"], True, True]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, client_loaded = json.loads(out.stdout)
    assert before == []
    assert "livepeer.capabilities.text_to_image" in after
    assert "livepeer.capabilities.llm" not in after
    # The wrappers' errors subclass livepeer.client's (one hierarchy), so the client's errors load too.
    assert client_loaded


# ---- the feature fixture (generated by `livepeer generate`) ---------------------------------------------


def test_keyword_and_non_identifier_names_go_out_under_their_wire_names(
    zoo: ModuleType, gateway: Any
) -> None:
    gateway.result = {"color": "red", "file": b"x"}
    zoo.Capabilities(gateway).kitchen_sink.run(
        image=b"img", class_="c", points=[{"x": 1, "y": 2}], my_field=3, field_2fast=True, json_="j"
    )
    payload = gateway.calls[0][2]["input"]
    assert payload["class"] == "c"
    assert payload["my-field"] == 3
    assert payload["2fast"] is True
    assert payload["json"] == "j"
    assert payload["points"] == [{"x": 1.0, "y": 2.0}]
    assert "tags" not in payload
    assert "nested" not in payload


def test_fixture_constraints_enum_and_min_items(zoo: ModuleType, gateway: Any) -> None:
    sink = zoo.Capabilities(gateway).kitchen_sink
    with pytest.raises(zoo.InputValidationError) as info:
        sink.run(image=b"i", class_="c", points=[], shade="grey")
    text = str(info.value)
    assert "points" in text
    assert "min_length=1" in text
    assert "shade" in text
    with pytest.raises(ValueError, match="my_field"):
        sink.run(image=b"i", class_="c", points=[{"x": 0, "y": 0}], my_field=-1)
    assert gateway.calls == []


def test_fixture_output_enum_tolerates_unknown_values(zoo: ModuleType, gateway: Any) -> None:
    gateway.result = {"color": "ultraviolet", "file": b"raw"}
    out = zoo.Capabilities(gateway).kitchen_sink.run(
        image=b"i", class_="c", points=[{"x": 0, "y": 0}]
    )
    assert out.color == "ultraviolet"
    assert out.file == b"raw"
    # the same enum stays strict where it is an input (the output side got its own open twin)
    with pytest.raises(zoo.InputValidationError, match="color"):
        zoo.Capabilities(gateway).kitchen_sink.run(
            image=b"i", class_="c", points=[{"x": 0, "y": 0}], color="ultraviolet"
        )


def test_fixture_unions_and_allof(zoo: ModuleType, gateway: Any) -> None:
    gateway.result = {"color": "red", "file": b""}
    zoo.Capabilities(gateway).kitchen_sink.run(
        image=b"i",
        class_="c",
        points=[{"x": 0, "y": 0}],
        either="text",
        maybe=4,
        labelled={"name": "n", "label": "l"},
    )
    payload = gateway.calls[0][2]["input"]
    assert payload["either"] == "text"
    assert payload["maybe"] == 4
    assert payload["labelled"] == {"name": "n", "label": "l"}


def test_fixture_sse_capability_gets_stream_verb_only(zoo: ModuleType, gateway: Any) -> None:
    ticker = zoo.Capabilities(gateway).ticker
    assert hasattr(ticker, "stream")
    assert not hasattr(ticker, "run")
    gateway.events = [json.dumps({"price": 1.5, "side": "hold"})]
    ticks = list(ticker.stream(symbol="ABC"))
    assert ticks[0].price == 1.5
    assert ticks[0].side == "hold"
    with pytest.raises(zoo.InputValidationError, match="pattern"):
        ticker.stream(symbol="abc")


def test_discriminated_union_const_and_type_lists(shapes: ModuleType, gateway: Any) -> None:
    gateway.result = [{"value": 3.14, "unit": "sr"}, {"value": 1}]
    wrapper = shapes.Capabilities(gateway).shapes
    areas = wrapper.run(shape={"kind": "circle", "r": 1}, scale=None)
    payload = gateway.calls[0][2]["input"]
    assert payload == {
        "shape": {"kind": "circle", "r": 1.0},
        "scale": None,
    }  # null sent: default is 1.0
    assert [a.value for a in areas] == [3.14, 1]
    assert areas[0].unit == "sr"  # unknown enum value tolerated in outputs
    assert areas[1].unit == "m2"
    with pytest.raises(shapes.InputValidationError, match="shape"):
        wrapper.run(shape={"kind": "triangle", "r": 1})
    with pytest.raises(shapes.InputValidationError, match="gt=0"):
        wrapper.run(shape={"kind": "square", "side": 0})
    assert len(gateway.calls) == 1


def test_partly_consumed_stream_resumes(gateway: Any) -> None:
    gateway.events = [json.dumps({"index": i, "token": w}) for i, w in enumerate(["a", "b", "c"])]
    events = caps(gateway).token_stream.stream(text="a b c")
    assert next(events).token == "a"
    assert [t.token for t in events] == ["b", "c"]


def test_live_with_typed_params(tmp_path: Path, gateway: Any) -> None:
    import importlib

    from livepeer.codegen import generate

    generate(str(Path(__file__).parent / "fixtures" / "live_runner.json"), tmp_path / "tints")
    sys.path.insert(0, str(tmp_path))
    try:
        tints = importlib.import_module("tints")
        wrapper = tints.Capabilities(gateway).live_tint
        assert not hasattr(wrapper, "run")
        wrapper.live(model="m", color="blue", model_="x", stream_id="s")
        with pytest.raises(tints.InputValidationError, match="strength"):
            wrapper.live(strength=2.0)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "tints"]:
            del sys.modules[name]
    ((verb, name, kwargs),) = gateway.calls
    assert (verb, name) == ("live", "live-tint")
    assert kwargs == {
        "model": "m",
        "params": {"color": "blue", "strength": 0.5, "model": "x"},
        "request_id": None,
        "stream_id": "s",
    }


def test_output_value_ranges_are_not_enforced_but_types_are(gateway: Any) -> None:
    gateway.result = {"label": "ecstatic", "score": 1.5, "positive": 3, "negative": 0}
    out = caps(gateway).sentiment.run(text="wow")
    assert out.score == 1.5  # the schema says <= 1; a newer server may widen it
    assert out.label == "ecstatic"
    gateway.result = {"label": "positive", "score": "high", "positive": 3, "negative": 0}
    with pytest.raises(OutputValidationError, match="score"):
        caps(gateway).sentiment.run(text="wow")
