"""The live samples driven through real trickle channels with real MPEG-TS frames."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import numpy as np
import pytest

from livepeer.devnet.samples.grayscale import Grayscale
from livepeer.devnet.samples.live_grayscale import PROGRESS_EVERY, LiveGrayscale
from livepeer.devnet.samples.noop import Noop
from livepeer.trickle import JsonlReader, JsonSegmentReader, TricklePublisher, TrickleSubscriber
from livepeer.trickle.media import MediaPublisher, MediaSubscriber

Frame = np.ndarray[Any, Any]


def picture(i: int) -> Frame:
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (220, 30, 30)
    frame[:, 32:] = (30, 30, 220)
    frame[: (i % 48)] //= 2
    return frame


async def run_session(
    client: httpx.AsyncClient, body: dict[str, str], count: int
) -> tuple[list[Frame], list[dict[str, Any]], list[dict[str, Any]]]:
    frames: list[Frame] = []
    events: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []

    async def read_frames() -> None:
        async with (
            TrickleSubscriber(body["publish_url"], start_seq=0) as sub,
            MediaSubscriber(sub) as media,
        ):
            async for frame in media:
                frames.append(frame.to_ndarray(format="rgb24"))

    async def read_events() -> None:
        async for event in JsonSegmentReader(body["events_url"], start_seq=0):
            events.append(event)

    async def read_rows() -> None:
        async for row in JsonlReader(body["data_url"], start_seq=0):
            rows.append(row)

    async with anyio.create_task_group() as tg:
        for reader in (read_frames, read_events, read_rows):
            tg.start_soon(reader)
        r = await client.post("/stream/start", json={**body, "params": {"level": 1}})
        assert r.status_code == 200, r.text
        async with (
            TricklePublisher(body["subscribe_url"]) as pub,
            MediaPublisher(pub, fps=30) as media,
        ):
            for i in range(count):
                await media.write_frame(picture(i))
        with anyio.fail_after(30):
            while not (events and events[-1].get("state") == "stopped"):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        tg.cancel_scope.deadline = anyio.current_time() + 10
    return frames, events, rows


def is_gray(frame: Frame) -> bool:
    spread = frame.astype(int).max(axis=2) - frame.astype(int).min(axis=2)
    return bool(spread.mean() < 4)


@pytest.mark.anyio
async def test_live_grayscale(sample: Any, channels: Any) -> None:
    async with channels("lg") as body, sample(LiveGrayscale) as client:
        frames, events, rows = await run_session(client, body, 2 * PROGRESS_EVERY)
    assert len(frames) == 2 * PROGRESS_EVERY
    assert all(is_gray(f) for f in frames)
    assert {"type": "stream_started", "params": {"level": 1}} in events
    assert {"type": "stream_stopped", "frames": 2 * PROGRESS_EVERY} in events
    assert [row["frame"] for row in rows] == [PROGRESS_EVERY, 2 * PROGRESS_EVERY]
    assert all(0 < row["mean_luma"] < 255 for row in rows)


@pytest.mark.anyio
async def test_lv2v_grayscale_model(sample: Any, channels: Any) -> None:
    async with channels("gm") as body, sample(Grayscale) as client:
        frames, _, _ = await run_session(client, body, 12)
    assert len(frames) == 12
    assert all(is_gray(f) for f in frames)
    assert (
        40 < frames[0][-1, :32].mean() < 120
    )  # brightness kept: luma of (220, 30, 30) is about 86


@pytest.mark.anyio
async def test_lv2v_noop_model(sample: Any, channels: Any) -> None:
    async with channels("nm") as body, sample(Noop) as client:
        frames, events, _ = await run_session(client, body, 12)
    assert len(frames) == 12
    for i, frame in enumerate(frames):
        assert np.abs(frame.astype(int) - picture(i).astype(int)).mean() < 10
    assert not is_gray(frames[0])
    assert events[-1]["inference_status"]["frames_out"] == 12
