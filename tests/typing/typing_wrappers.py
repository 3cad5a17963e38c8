"""Static typing of the generated wrappers, checked by mypy --strict from test_typing.py (never executed).

Each ``assert_type`` pins the type a user's IDE sees; each ``# type: ignore[...]`` line must stay an error
(strict mode reports an unused ignore, so a wrapper that stopped rejecting bad input fails the check).
"""

from __future__ import annotations

from pathlib import Path

from typing_extensions import assert_type

from livepeer.capabilities import AsyncEventStream, Capabilities, Capability, EventStream
from livepeer.capabilities.image_to_image import ImageToImage
from livepeer.capabilities.llm import LLMMessage, LLMResponse
from livepeer.capabilities.sentiment import SentimentOutput
from livepeer.capabilities.text_reversal import ReversalOutput
from livepeer.capabilities.text_to_image import ImageResponse, Media, TextToImage
from livepeer.capabilities.text_to_speech import AudioResponse
from livepeer.capabilities.token_stream import Token
from livepeer.client import AsyncStreamResponse, FileOutput, Gateway, LiveSession, StreamResponse


def batch(gw: Gateway) -> None:
    caps = gw.capabilities
    assert_type(caps, Capabilities)
    assert_type(caps.text_to_image, TextToImage)
    out = caps.text_to_image.run(prompt="a cat", model_id="m", seed=1)
    assert_type(out, ImageResponse)
    assert_type(caps.text_to_image.run(prompt="a cat"), ImageResponse)  # model id optional
    assert_type(out.images, list[Media])
    assert_type(out.images[0].url, FileOutput)
    assert_type(out.images[0].seed, int)
    speech = caps.text_to_speech.run(model_id="m", text="hi")
    assert_type(speech, AudioResponse)
    assert_type(speech.audio.url, FileOutput)
    assert_type(caps.text_reversal.run(text="abc"), ReversalOutput)
    assert_type(caps.sentiment.run(text="good").score, float)
    assert_type(caps.sentiment.run(text="good"), SentimentOutput)


def files(gw: Gateway) -> None:
    i2i = gw.capabilities.image_to_image
    assert_type(i2i, ImageToImage)
    i2i.run(prompt="x", image=Path("in.png"), model_id="")
    i2i.run(prompt="x", image=b"\x89PNG", model_id="")
    with Path("in.png").open("rb") as binary:
        i2i.run(prompt="x", image=binary, model_id="")
    i2i.run(prompt="x", image="in.png", model_id="")  # type: ignore[arg-type]


def wrong_input(gw: Gateway) -> None:
    t2i = gw.capabilities.text_to_image
    t2i.run(prompt=1, model_id="m")  # type: ignore[arg-type]
    t2i.run(model_id="m")  # type: ignore[call-arg]
    t2i.run("a cat", "m")  # type: ignore[call-arg]
    t2i.run(prompt="x", model_id="m", no_such_field=1)  # type: ignore[call-arg]
    gw.capabilities.token_stream.run(text="x")  # type: ignore[attr-defined]


def streams(gw: Gateway) -> None:
    llm = gw.capabilities.llm
    events = llm.stream(messages=[LLMMessage(role="user", content="hi")], max_tokens=8)
    assert_type(events, EventStream[LLMResponse])
    assert_type(events.response, StreamResponse)
    with events as chunks:
        for chunk in chunks:
            assert_type(chunk, LLMResponse)
    for token in gw.capabilities.token_stream.stream(text="a b"):
        assert_type(token, Token)
        assert_type(token.index, int)


async def async_twins(gw: Gateway) -> None:
    assert_type(await gw.capabilities.text_reversal.run_async(text="x"), ReversalOutput)
    stream = gw.capabilities.token_stream.stream_async(text="a b")
    assert_type(stream, AsyncEventStream[Token])
    assert_type(stream.response, AsyncStreamResponse)
    async with stream as tokens:
        async for token in tokens:
            assert_type(token, Token)


def untyped(gw: Gateway) -> None:
    handle = gw.capabilities["my-own-capability"]
    assert_type(handle, Capability)
    assert_type(handle.run(input={"a": 1}), object)
    assert_type(handle.stream(input={}), StreamResponse)


def live(gw: Gateway) -> None:
    session = gw.capabilities.live_video_to_video.live(model="noop", params={"strength": 0.5})
    assert_type(session, LiveSession)
    assert_type(gw.capabilities["live-grayscale"].live(model=None), LiveSession)
    gw.capabilities.live_video_to_video.live("noop")  # type: ignore[call-arg]
