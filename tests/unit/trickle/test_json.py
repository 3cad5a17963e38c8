"""JSON framings: one object per segment (control/events) and newline-delimited JSON (data)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from livepeer.trickle import (
    JsonChannelError,
    JsonlReader,
    JsonlWriter,
    JsonSegmentReader,
    JsonSegmentWriter,
    TrickleError,
    TrickleInvalidInput,
    TricklePublisher,
    TrickleSubscriber,
)

pytestmark = pytest.mark.anyio


async def test_segment_per_object_round_trip_with_keepalives(trickle: Any, eventually: Any) -> None:
    url = trickle.channel("abc-control", mime_type="application/json")
    async with JsonSegmentWriter(url, keepalive_interval=0.1, delete_on_close=False) as writer:
        assert await writer.write({"prompt": "a cat"}) == 0
        await eventually(lambda: writer.keepalives_sent >= 2)
        await writer.write({"prompt": "a dog", "n": [1, 2]})
    async with httpx.AsyncClient() as http:
        raw = await http.get(f"{url}/1")
    assert raw.json() == {"keep": "alive"}  # keepalives are on the wire ...
    reader = JsonSegmentReader(url, start_seq=0)
    got = []
    async with reader:
        async for message in reader:
            got.append(message)
            if len(got) == 2:
                break
    assert got == [
        {"prompt": "a cat"},
        {"prompt": "a dog", "n": [1, 2]},
    ]  # ... and filtered on read
    assert reader.keepalives >= 2


async def test_no_keepalive_while_busy(trickle: Any) -> None:
    url = trickle.channel("c", mime_type="application/json")
    async with JsonSegmentWriter(url, keepalive_interval=60.0) as writer:
        for i in range(3):
            await writer.write({"i": i})
        assert writer.keepalives_sent == 0


async def test_malformed_segment_names_channel_and_seq_and_reader_continues(trickle: Any) -> None:
    url = trickle.channel("abc-events", mime_type="application/json")
    async with TricklePublisher(url, "application/json", delete_on_close=False) as pub:
        await pub.write(b'{"type":"status"}')
        await pub.write(b"{not json")
        await pub.write(b"[1, 2]")
        await pub.write(b'{"type":"done"}', wait=True)
    reader = JsonSegmentReader(url, start_seq=0)
    results: list[object] = []
    async with reader:
        while len(results) < 4:
            try:
                results.append(await reader.__anext__())
            except JsonChannelError as exc:
                results.append((exc.channel, exc.seq))
    assert results == [{"type": "status"}, (url, 1), (url, 2), {"type": "done"}]


async def test_reader_over_existing_subscriber_and_without_async_with(trickle: Any) -> None:
    url = trickle.channel("c", mime_type="application/json")
    async with JsonSegmentWriter(url, keepalive_interval=None, delete_on_close=False) as writer:
        await writer.write({"a": 1})
        await writer.write({"a": 2})
    async with TrickleSubscriber(url, start_seq=0) as sub:
        reader = JsonSegmentReader(sub)
        assert await reader.__anext__() == {"a": 1}
        assert await reader.__anext__() == {"a": 2}
    trickle.server.close_channel("c")
    # Plain iteration (no async with) ends cleanly when the channel is gone.
    assert [m async for m in JsonSegmentReader(url, start_seq=0)] == []


async def test_writer_rejects_bad_messages(trickle: Any) -> None:
    url = trickle.channel("c", mime_type="application/json")
    async with JsonSegmentWriter(url) as writer:
        with pytest.raises(TrickleInvalidInput):
            await writer.write({"x": object()})
        with pytest.raises(TrickleInvalidInput):
            await writer.write([1, 2])  # type: ignore[arg-type]
        with pytest.raises(TrickleInvalidInput):
            await writer.write({"x": float("nan")})
    with pytest.raises(TrickleError, match="async with"):
        await JsonSegmentWriter(url).write({"a": 1})
    with pytest.raises(TrickleInvalidInput):
        JsonSegmentWriter(TricklePublisher(url), verify=True)


async def test_oversized_message_is_a_typed_error(trickle: Any) -> None:
    url = trickle.channel("c", mime_type="application/json")
    async with TricklePublisher(url, "application/json", delete_on_close=False) as pub:
        await pub.write(b'{"big":"' + b"x" * 5000 + b'"}')
        await pub.write(b'{"small":1}', wait=True)
    reader = JsonSegmentReader(url, start_seq=0, max_message_size=1000)
    async with reader:
        with pytest.raises(JsonChannelError) as info:
            await reader.__anext__()
        assert info.value.seq == 0
        assert await reader.__anext__() == {"small": 1}


async def test_jsonl_lines_arrive_before_rotation_and_segments_rotate(
    trickle: Any, eventually: Any
) -> None:
    url = trickle.channel("abc-data", mime_type="application/jsonl")
    got: list[dict[str, object]] = []
    async with JsonlWriter(url, rotate_interval=0.3, delete_on_close=False) as writer:
        reader = JsonlReader(url, start_seq=-2)
        async with reader:
            first = await writer.write({"row": 0})
            # The line is readable while its segment is still open.
            got.append(await reader.__anext__())
            assert writer.current_seq == first
            await eventually(lambda: writer.current_seq is None, within=5)  # rotated
            second = await writer.write({"row": 1})
            assert second > first
            await writer.write({"keep": "alive"})
            await writer.write({"row": 2})
            got.append(await reader.__anext__())
            got.append(await reader.__anext__())
    assert got == [{"row": 0}, {"row": 1}, {"row": 2}]


async def test_jsonl_malformed_lines_and_long_lines(trickle: Any) -> None:
    url = trickle.channel("abc-data", mime_type="application/jsonl")
    payload = b'{"a":1}\nnot json\n{"b":' + b"9" * 3000 + b"}\n\n" + b'{"c":3}\n{"d":4}'
    async with TricklePublisher(url, "application/jsonl", delete_on_close=False) as pub:
        async with pub.segment() as seg:
            for i in range(0, len(payload), 7):
                await seg.write(payload[i : i + 7])  # lines split across chunks
        await pub.flush()
    reader = JsonlReader(url, start_seq=0, max_line_size=1000)
    results: list[object] = []
    async with reader:
        while len(results) < 5:
            try:
                results.append(await reader.__anext__())
            except JsonChannelError as exc:
                results.append(("error", exc.seq))
    assert results == [{"a": 1}, ("error", 0), ("error", 0), {"c": 3}, {"d": 4}]
