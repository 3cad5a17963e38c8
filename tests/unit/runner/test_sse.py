"""SSE pipelines over real HTTP, framing checked with httpx-sse (a parser we did not write)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from pydantic import BaseModel

from livepeer.runner import Pipeline, PipelineError


class Word(BaseModel):
    i: int
    word: str


class SyncWords(Pipeline):
    def predict(self, text: str) -> Iterator[Word]:
        for i, word in enumerate(text.split()):
            yield Word(i=i, word=word)


class AsyncWords(Pipeline):
    async def predict(self, text: str) -> AsyncIterator[str]:
        for word in text.split():
            await anyio.lowlevel.checkpoint()
            yield word


class Either(Pipeline):
    """Returns a value or a stream depending on the input, like the AI runner's llm route."""

    async def predict(
        self, text: str, stream: bool = False
    ) -> dict[str, str] | AsyncIterator[dict[str, str]]:
        if stream:
            return self._words(text)
        return {"text": text}

    async def _words(self, text: str) -> AsyncIterator[dict[str, str]]:
        for word in text.split():
            yield {"word": word}


class Multiline(Pipeline):
    def predict(self) -> Iterator[str]:
        yield "line one\nline two\r\nline three"
        yield "data: [DONE]"  # an item that looks like the terminator must not end the stream


class Explodes(Pipeline):
    async def predict(self, fail_with: str) -> AsyncIterator[int]:
        yield 1
        if fail_with == "pipeline":
            raise PipelineError("ran out of tokens")
        raise ValueError("kaput")


async def collect(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> tuple[httpx.Response, list[ServerSentEvent]]:
    async with aconnect_sse(client, "POST", "/", json=body) as source:
        events = [event async for event in source.aiter_sse()]
        return source.response, events


@pytest.mark.anyio
@pytest.mark.parametrize("pipeline", [SyncWords, AsyncWords])
async def test_one_event_per_item_then_done(running: Any, pipeline: type[Pipeline]) -> None:
    async with running(pipeline) as client:
        response, events = await collect(client, {"text": "a bb ccc"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert [e.event for e in events] == ["message"] * 4
    assert events[-1].data == "[DONE]"
    items = [e.json() for e in events[:-1]]
    if pipeline is SyncWords:
        assert items == [{"i": 0, "word": "a"}, {"i": 1, "word": "bb"}, {"i": 2, "word": "ccc"}]
    else:
        assert items == ["a", "bb", "ccc"]


@pytest.mark.anyio
async def test_raw_framing_is_data_lines_and_blank_lines(running: Any) -> None:
    async with running(AsyncWords) as client:
        r = await client.post("/", json={"text": "x y"})
    assert r.text == 'data: "x"\n\ndata: "y"\n\ndata: [DONE]\n\n'


@pytest.mark.anyio
async def test_value_or_stream_decided_at_runtime(running: Any) -> None:
    async with running(Either) as client:
        plain = await client.post("/", json={"text": "p q"})
        _, events = await collect(client, {"text": "p q", "stream": True})
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json() == {"text": "p q"}
    assert [e.data for e in events] == ['{"word":"p"}', '{"word":"q"}', "[DONE]"]


@pytest.mark.anyio
async def test_items_with_newlines_stay_one_event(running: Any) -> None:
    async with running(Multiline) as client:
        _, events = await collect(client, {})
    assert [e.json() for e in events[:-1]] == ["line one\nline two\r\nline three", "data: [DONE]"]
    assert events[-1].data == "[DONE]"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fail_with", "message"), [("pipeline", "ran out of tokens"), ("other", "ValueError: kaput")]
)
async def test_error_mid_stream_is_an_error_event_then_done(
    running: Any, fail_with: str, message: str
) -> None:
    async with running(Explodes) as client:
        response, events = await collect(client, {"fail_with": fail_with})
    assert response.status_code == 200  # headers were already sent
    assert [(e.event, e.data) for e in events[:1]] == [("message", "1")]
    assert events[1].event == "error"
    assert events[1].json() == {"detail": {"msg": message}}
    assert events[2].data == "[DONE]"
    assert len(events) == 3


@pytest.mark.anyio
async def test_bad_input_is_422_not_a_stream(running: Any) -> None:
    async with running(SyncWords) as client:
        r = await client.post("/", json={"text": 5})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "text"]


class Endless(Pipeline):
    def __init__(self) -> None:
        self.closed = threading.Event()

    def predict(self) -> Iterator[int]:
        i = 0
        try:
            while True:
                yield i
                i += 1
        finally:
            self.closed.set()


@pytest.mark.anyio
async def test_client_disconnect_closes_the_generator(running: Any) -> None:
    pipeline = Endless()
    async with running(pipeline) as client:
        async with aconnect_sse(client, "POST", "/", json={}) as source:
            seen = []
            async for event in source.aiter_sse():
                seen.append(event.json())
                if len(seen) == 3:
                    break
        closed = await anyio.to_thread.run_sync(pipeline.closed.wait, 5)
    assert seen == [0, 1, 2]
    assert closed
