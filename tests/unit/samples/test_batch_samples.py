"""The devnet's batch and SSE samples, and the registry, over real HTTP."""

from __future__ import annotations

import base64
import importlib
import io
from typing import Any

import pytest
from httpx_sse import aconnect_sse
from openapi_spec_validator import validate
from PIL import Image

from livepeer.devnet.samples import AI_PIPELINES, BYOC, LV2V_MODELS, SAMPLES
from livepeer.devnet.samples.llm import LLM, MODEL_ID
from livepeer.devnet.samples.sentiment import Sentiment, score
from livepeer.devnet.samples.text_reversal import TextReversal
from livepeer.devnet.samples.text_to_image import TextToImage
from livepeer.devnet.samples.token_stream import TokenStream
from livepeer.runner import LivePipeline, Pipeline, openapi_schema

MODULES = {
    "text-reversal": "text_reversal",
    "token-stream": "token_stream",
    "sentiment": "sentiment",
    "live-grayscale": "live_grayscale",
    "text-to-image": "text_to_image",
    "llm": "llm",
    "live-video-to-video/noop": "noop",
    "live-video-to-video/grayscale": "grayscale",
}


def test_registry_covers_every_sample_once() -> None:
    assert set(SAMPLES) == set(MODULES)
    assert set(SAMPLES) == set(BYOC) | set(AI_PIPELINES) | {
        f"live-video-to-video/{m}" for m in LV2V_MODELS
    }
    for key, cls in SAMPLES.items():
        module = importlib.import_module(f"livepeer.devnet.samples.{MODULES[key]}")
        assert cls.capability_name() == module.CAPABILITY
        assert key.split("/")[0] == module.CAPABILITY
        if "/" in key:
            assert key.split("/")[1] == module.MODEL_ID
            assert issubclass(cls, LivePipeline)


@pytest.mark.parametrize("key", sorted(MODULES))
def test_every_sample_has_a_valid_schema(key: str) -> None:
    doc: dict[str, Any] = openapi_schema(SAMPLES[key])
    validate(doc)
    verbs = {"live-grayscale": ["live"], "token-stream": ["stream"], "llm": ["run", "stream"]}
    expected = verbs.get(key, ["live"] if issubclass(SAMPLES[key], LivePipeline) else ["run"])
    assert doc["x-livepeer-verbs"] == expected
    assert doc["info"].get("description")


@pytest.mark.anyio
async def test_text_reversal(sample: Any) -> None:
    async with sample(TextReversal) as client:
        r = await client.post("/", json={"text": "héllo wörld"})
        missing = await client.post("/", json={})
    assert r.json() == {"original": "héllo wörld", "reversed": "dlröw olléh"}
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "text"]


@pytest.mark.anyio
async def test_token_stream_one_event_per_word(sample: Any) -> None:
    async with (
        sample(TokenStream) as client,
        aconnect_sse(client, "POST", "/", json={"text": "the quick  brown\nfox"}) as source,
    ):
        events = [e async for e in source.aiter_sse()]
    assert [e.json() for e in events[:-1]] == [
        {"index": 0, "token": "the"},
        {"index": 1, "token": "quick"},
        {"index": 2, "token": "brown"},
        {"index": 3, "token": "fox"},
    ]
    assert events[-1].data == "[DONE]"


@pytest.mark.parametrize(
    ("text", "label", "positive", "negative"),
    [
        ("I love this, it is great", "positive", 2, 0),
        ("This is terrible and slow", "negative", 0, 2),
        ("The sky is blue", "neutral", 0, 0),
        ("not good at all", "negative", 0, 1),
        ("Good food but awful service and bad music", "negative", 1, 2),
    ],
)
def test_sentiment_scorer(text: str, label: str, positive: int, negative: int) -> None:
    out = score(text)
    assert (out.label, out.positive, out.negative) == (label, positive, negative)
    matched = positive + negative
    assert out.score == ((positive - negative) / matched if matched else 0.0)


@pytest.mark.anyio
async def test_sentiment_over_http(sample: Any) -> None:
    async with sample(Sentiment) as client:
        r = await client.post("/", json={"text": "What a wonderful day"})
    assert r.json() == {"label": "positive", "score": 1.0, "positive": 1, "negative": 0}


def decode_images(body: dict[str, Any]) -> list[Image.Image]:
    images: list[Image.Image] = []
    for media in body["images"]:
        prefix = "data:image/png;base64,"
        assert media["url"].startswith(prefix)
        data = base64.b64decode(media["url"][len(prefix) :], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        image = Image.open(io.BytesIO(data))
        image.load()
        images.append(image)
    return images


@pytest.mark.anyio
async def test_text_to_image_returns_real_deterministic_pngs(sample: Any) -> None:
    async with sample(TextToImage) as client:
        req = {"prompt": "a red fox", "model_id": "any", "width": 64, "height": 40, "seed": 7}
        first = (await client.post("/text-to-image", json=req)).json()
        again = (await client.post("/text-to-image", json=req)).json()
        other = (await client.post("/", json={**req, "seed": 8, "num_images_per_prompt": 2})).json()
        default = (
            await client.post("/", json={"prompt": "a red fox", "width": 16, "height": 16})
        ).json()
        too_big = await client.post("/", json={"prompt": "x", "width": 100_000})
        no_prompt = await client.post("/", json={"model_id": "m"})
    assert first == again
    assert set(first) == {"images"}
    assert set(first["images"][0]) == {"url", "seed", "nsfw"}
    assert first["images"][0]["seed"] == 7
    assert first["images"][0]["nsfw"] is False
    (image,) = decode_images(first)
    assert (image.format, image.size, image.mode) == ("PNG", (64, 40), "RGB")
    assert len(image.getcolors(64 * 40) or []) > 10  # a picture, not a flat fill
    assert [m["seed"] for m in other["images"]] == [8, 9]
    assert other["images"][0]["url"] != first["images"][0]["url"]
    assert decode_images(default)[0].size == (16, 16)
    assert isinstance(default["images"][0]["seed"], int)
    assert too_big.status_code == 400
    assert no_prompt.status_code == 422
    assert no_prompt.json()["detail"][0]["loc"] == ["body", "prompt"]


LLM_REQUEST = {
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
}


def check_llm_response(body: dict[str, Any]) -> None:
    assert set(body) == {"id", "model", "created", "usage", "choices"}
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.anyio
async def test_llm_non_streaming(sample: Any) -> None:
    async with sample(LLM) as client:
        r = await client.post("/llm", json={**LLM_REQUEST, "max_tokens": 2, "future_field": 1})
        empty = await client.post("/llm", json={"messages": []})
    body = r.json()
    check_llm_response(body)
    assert body["model"] == MODEL_ID
    assert body["choices"] == [
        {
            "index": 0,
            "finish_reason": "stop",
            "delta": None,
            "message": {"role": "assistant", "content": "Echo: hello"},
        }
    ]
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    assert empty.status_code == 422


@pytest.mark.anyio
async def test_llm_streaming_follows_the_ai_runner(sample: Any) -> None:
    async with sample(LLM) as client:
        body = {**LLM_REQUEST, "stream": True, "model": "my-model"}
        async with aconnect_sse(client, "POST", "/llm", json=body) as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            events = [e async for e in source.aiter_sse()]
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[:-1]]
    for chunk in chunks:
        check_llm_response(chunk)
        assert chunk["model"] == "my-model"
        assert chunk["choices"][0]["message"] is None
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
    assert text == "Echo: hello there"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == ["", "", "", "stop"]
    assert chunks[-1]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["usage"]["completion_tokens"] for c in chunks] == [1, 2, 3, 3]


def test_samples_are_pipelines() -> None:
    for cls in SAMPLES.values():
        assert issubclass(cls, (Pipeline, LivePipeline))
