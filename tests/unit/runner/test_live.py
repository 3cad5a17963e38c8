"""Live pipelines end to end: real MPEG-TS frames published with livepeer.trickle into a loopback trickle
server, processed by a runner, read back from the output channel; events, data and control channels too."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from pydantic import BaseModel, Field

from livepeer.runner import LivePipeline, PipelineError, RunnerError
from livepeer.trickle import (
    JsonlReader,
    JsonSegmentReader,
    JsonSegmentWriter,
    TricklePublisher,
    TrickleSubscriber,
)
from livepeer.trickle.media import MediaPublisher, MediaSubscriber

W, H = 64, 48
Frame = np.ndarray[Any, Any]


def colour_frame(i: int) -> Frame:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[..., 0] = 200
    frame[..., 1] = 40
    frame[..., 2] = (i * 7) % 200
    return frame


class Recorder(LivePipeline):
    """Grayscale with every hook recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_stream_start(self, params: dict[str, Any]) -> None:
        self.calls.append(("start", params))
        self.emit_event({"type": "hello", "params": params})
        self.emit_data({"row": 1})

    def process_video(self, frame: Any) -> Any:
        return frame.to_ndarray(format="gray")

    async def on_params_update(self, params: dict[str, Any]) -> None:
        self.calls.append(("params", params))

    def on_stream_stop(self) -> None:
        self.calls.append(("stop", None))
        self.emit_data({"row": 2})


async def publish_frames(url: str, count: int) -> None:
    async with TricklePublisher(url) as pub, MediaPublisher(pub, fps=30) as media:
        for i in range(count):
            await media.write_frame(colour_frame(i))


async def read_frames(url: str, into: list[Frame]) -> None:
    async with TrickleSubscriber(url, start_seq=0) as sub, MediaSubscriber(sub) as frames:
        async for frame in frames:
            into.append(frame.to_ndarray(format="rgb24"))


async def read_events(url: str, into: list[dict[str, Any]]) -> None:
    async for event in JsonSegmentReader(url, start_seq=0):
        into.append(event)


async def wait_idle(client: httpx.AsyncClient) -> None:
    with anyio.fail_after(30):
        while (await client.get("/stream/status")).json()["status"] != "idle":  # noqa: ASYNC110
            await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_session_transforms_frames_and_reports_events(
    running: Any, trickle_channels: Any
) -> None:
    pipeline = Recorder()
    frames_out: list[Frame] = []
    events: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    async with trickle_channels("a") as ch, running(pipeline) as client:

        async def read_rows() -> None:
            async for row in JsonlReader(ch.url("data"), start_seq=0):
                rows.append(row)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_frames, ch.url("out"), frames_out)
            tg.start_soon(read_events, ch.url("events"), events)
            tg.start_soon(read_rows)
            r = await client.post(
                "/stream/start", json=ch.start_body(mode="gray"), headers={"X-Stream-Id": "sid-1"}
            )
            assert r.status_code == 200
            assert r.json() == {"status": "started", "stream_id": "sid-1"}
            second = await client.post("/stream/start", json=ch.start_body())
            assert second.status_code == 409
            await publish_frames(ch.url("in"), 45)  # closing the publisher ends the input channel
            await wait_idle(client)
            with anyio.fail_after(15):
                while not (events and events[-1].get("state") == "stopped"):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            tg.cancel_scope.deadline = anyio.current_time() + 10

    assert len(frames_out) == 45
    for frame in frames_out:
        r_, g_, b_ = (int(frame[..., c].mean()) for c in range(3))
        assert max(r_, g_, b_) - min(r_, g_, b_) <= 3  # gray: no colour left
    assert 80 < frames_out[0].mean() < 110  # luma of (200, 40, 0) is about 85
    assert pipeline.calls[0] == ("start", {"mode": "gray"})
    assert pipeline.calls[-1] == ("stop", None)
    assert [c for c in pipeline.calls if c[0] == "stop"] == [("stop", None)]
    assert {"type": "hello", "params": {"mode": "gray"}} in events
    statuses = [e for e in events if e["type"] == "status"]
    assert statuses[0]["state"] == "running"
    assert statuses[-1]["state"] == "stopped"
    assert statuses[-1]["stream_id"] == "sid-1"
    assert statuses[-1]["gateway_request_id"] == "req-a"
    assert statuses[-1]["inference_status"]["frames_in"] == 45
    assert statuses[-1]["inference_status"]["frames_out"] == 45
    assert rows == [{"row": 1}, {"row": 2}]


class Passthrough(LivePipeline):
    pass


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_hooks_that_are_not_overridden_pass_frames_through(
    running: Any, trickle_channels: Any
) -> None:
    frames_out: list[Frame] = []
    async with (
        trickle_channels("p") as ch,
        running(Passthrough) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(read_frames, ch.url("out"), frames_out)
        body = ch.start_body()
        del body["control_url"], body["data_url"], body["events_url"]
        assert (await client.post("/stream/start", json=body)).status_code == 200
        await publish_frames(ch.url("in"), 20)
        await wait_idle(client)
        tg.cancel_scope.deadline = anyio.current_time() + 10
    assert len(frames_out) == 20
    for i, frame in enumerate(frames_out):
        expected = colour_frame(i).astype(int)
        assert np.abs(frame.astype(int) - expected).mean() < 8  # lossy H.264, but the same picture


class Params(BaseModel):
    strength: float = Field(default=0.5, ge=0, le=1)
    prompt: str = ""


class Tunable(LivePipeline):
    params_model = Params
    heartbeat_interval = 0.1

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.updated = anyio.Event()

    def on_params_update(self, params: dict[str, Any]) -> None:
        self.updates.append(params)
        if len(self.updates) == 2:
            self.updated.set()


@pytest.mark.anyio
async def test_params_over_http_and_control_channel(running: Any, trickle_channels: Any) -> None:
    pipeline = Tunable()
    events: list[dict[str, Any]] = []
    async with trickle_channels("c") as ch, running(pipeline) as client:
        bad = await client.post("/stream/start", json=ch.start_body(strength=3))
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "params", "strength"]
        no_stream = await client.post("/stream/params", json={"strength": 0.2})
        assert no_stream.status_code == 409
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_events, ch.url("events"), events)
            start = await client.post("/stream/start", json=ch.start_body(strength=0.1))
            assert start.status_code == 200
            ok = await client.post("/stream/params", json={"params": {"strength": 0.9}})
            invalid = await client.post("/stream/params", json={"strength": "lots"})
            async with JsonSegmentWriter(ch.url("control")) as control:
                await control.write({"prompt": "a cat"})
                with anyio.fail_after(10):
                    await pipeline.updated.wait()
            status = (await client.get("/stream/status")).json()
            with anyio.fail_after(10):
                while sum(e["type"] == "status" for e in events) < 3:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            stop = await client.post("/stream/stop")
            tg.cancel_scope.deadline = anyio.current_time() + 10
        again = await client.post("/stream/stop")
    assert ok.status_code == 200
    assert ok.json()["status"] == "updated"
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "strength"]
    assert pipeline.updates == [
        {"strength": 0.9, "prompt": ""},
        {"strength": 0.5, "prompt": "a cat"},
    ]
    assert status["params"] == {"strength": 0.5, "prompt": "a cat"}
    assert stop.json()["status"] == "stopped"
    assert again.json() == {"status": "idle", "stream_id": None}
    running_statuses = [e for e in events if e["type"] == "status" and e["state"] == "running"]
    assert len(running_statuses) >= 3  # heartbeat repeats
    assert events[-1]["state"] == "stopped"


class Faulty(LivePipeline):
    def process_video(self, frame: Any) -> Any:
        raise ValueError("bad frame")


@pytest.mark.anyio
async def test_process_errors_become_one_event_and_frames_pass(
    running: Any, trickle_channels: Any
) -> None:
    frames_out: list[Frame] = []
    events: list[dict[str, Any]] = []
    async with (
        trickle_channels("f") as ch,
        running(Faulty) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(read_frames, ch.url("out"), frames_out)
        tg.start_soon(read_events, ch.url("events"), events)
        assert (await client.post("/stream/start", json=ch.start_body())).status_code == 200
        await publish_frames(ch.url("in"), 10)
        await wait_idle(client)
        with anyio.fail_after(15):
            while not (events and events[-1].get("state") == "stopped"):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        tg.cancel_scope.deadline = anyio.current_time() + 10
    assert len(frames_out) == 10
    errors = [e for e in events if e["type"] == "error"]
    assert errors == [
        {"type": "error", "message": "process_video: ValueError: bad frame", "stream_id": "req-f"}
    ]
    assert events[-1]["inference_status"]["last_error"] == "process_video: ValueError: bad frame"


class Refuses(LivePipeline):
    def on_stream_start(self, params: dict[str, Any]) -> None:
        if params.get("model") != "ok":
            raise PipelineError("unknown model", status_code=404)


@pytest.mark.anyio
async def test_start_hook_can_refuse_and_stop_then_restart(
    running: Any, trickle_channels: Any
) -> None:
    async with trickle_channels("r") as ch, running(Refuses) as client:
        refused = await client.post("/stream/start", json=ch.start_body(model="nope"))
        idle = (await client.get("/stream/status")).json()
        started = await client.post("/stream/start", json=ch.start_body(model="ok"))
        stopped = await client.post("/stream/stop")
        restarted = await client.post("/stream/start", json=ch.start_body(model="ok"))
        stop_text = await client.post(
            "/stream/stop", content=b"stream ended"
        )  # go-livepeer sends text
    async with trickle_channels("n") as ch, running(Passthrough) as client:
        null_params = await client.post("/stream/start", json={**ch.start_body(), "params": None})
        status = (await client.get("/stream/status")).json()
        await client.post("/stream/stop")
    assert null_params.status_code == 200
    assert status["params"] == {}
    assert stop_text.json()["status"] == "stopped"
    assert (refused.status_code, refused.json()) == (404, {"detail": {"msg": "unknown model"}})
    assert idle["status"] == "idle"
    assert started.status_code == 200
    assert stopped.json() == {"status": "stopped", "stream_id": "req-r"}
    assert restarted.status_code == 200


@pytest.mark.anyio
async def test_live_start_validation_and_auth(running: Any, trickle_channels: Any) -> None:
    async with trickle_channels("v") as ch, running(Passthrough, token="t0k") as client:
        unauthorised = await client.post("/stream/start", json=ch.start_body())
        auth = {"Authorization": "Bearer t0k"}
        bad_type = await client.post("/stream/start", json={"subscribe_url": 5}, headers=auth)
        not_json = await client.post("/stream/start", content=b"nope", headers=auth)
        info = (await client.get("/")).json()
        schema = (await client.get("/openapi.json")).json()
    assert unauthorised.status_code == 401
    assert bad_type.status_code == 422
    assert bad_type.json()["detail"][0]["loc"] == ["body", "subscribe_url"]
    assert not_json.status_code == 422
    assert info["verbs"] == ["live"]
    assert schema["x-livepeer-verbs"] == ["live"]
    assert "/stream/start" in schema["paths"]


def test_emit_without_a_stream_is_an_error() -> None:
    with pytest.raises(RunnerError, match="no active stream"):
        Passthrough().emit_event({"type": "x"})
    with pytest.raises(RunnerError, match="no active stream"):
        Passthrough().emit_data({"x": 1})


@pytest.mark.anyio
async def test_ai_runner_live_video_to_video_alias(running: Any, trickle_channels: Any) -> None:
    frames_out: list[Frame] = []
    async with (
        trickle_channels("l") as ch,
        running(Passthrough) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(read_frames, ch.url("out"), frames_out)
        body = {**ch.start_body(), "model_id": "noop", "manifest_id": "m-1", "stream_id": "st-1"}
        r = await client.post("/live-video-to-video", json=body)
        busy = await client.post("/live-video-to-video", json=body)
        await publish_frames(ch.url("in"), 8)
        await wait_idle(client)
        tg.cancel_scope.deadline = anyio.current_time() + 10
    assert r.status_code == 200
    assert r.json() == {
        "subscribe_url": ch.url("in"),
        "publish_url": ch.url("out"),
        "control_url": ch.url("control"),
        "events_url": ch.url("events"),
        "request_id": "req-l",
        "manifest_id": "m-1",
    }
    assert busy.status_code == 409
    assert len(frames_out) == 8


class Tracked(LivePipeline):
    def __init__(self) -> None:
        self.stopped = 0

    def on_stream_stop(self) -> None:
        self.stopped += 1


@pytest.mark.anyio
async def test_server_shutdown_stops_the_running_session(
    running: Any, trickle_channels: Any
) -> None:
    pipeline = Tracked()
    events: list[dict[str, Any]] = []
    async with trickle_channels("x") as ch, anyio.create_task_group() as tg:
        tg.start_soon(read_events, ch.url("events"), events)
        async with running(pipeline) as client:
            assert (await client.post("/stream/start", json=ch.start_body())).status_code == 200
            with anyio.fail_after(10):
                while not events:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
        # the runner is gone: it stopped the session and closed the events channel, ending the reader
        tg.cancel_scope.deadline = anyio.current_time() + 10
    assert pipeline.stopped == 1
    assert events[-1]["state"] == "stopped"


@pytest.mark.anyio
async def test_setup_failure_refuses_streams(running: Any, trickle_channels: Any) -> None:
    class Broken(LivePipeline):
        def setup(self) -> None:
            raise OSError("no gpu")

    async with trickle_channels("b") as ch, running(Broken) as client:
        health = await client.get("/health")
        start = await client.post("/stream/start", json=ch.start_body())
    assert (health.status_code, health.json()["status"]) == (503, "error")
    assert start.status_code == 503
    assert "no gpu" in start.json()["detail"]["msg"]


@pytest.mark.anyio
async def test_orchestrator_closing_the_channels_ends_the_session(
    running: Any, trickle_channels: Any
) -> None:
    pipeline = Tracked()
    async with trickle_channels("o") as ch, running(pipeline) as client:
        assert (await client.post("/stream/start", json=ch.start_body())).status_code == 200
        async with TricklePublisher(ch.url("in")) as pub, MediaPublisher(pub, fps=30) as media:
            for i in range(45):  # past the first GOP, so whole segments reach the runner
                await media.write_frame(colour_frame(i))
            with anyio.fail_after(10):
                while (await client.get("/stream/status")).json().get("frames_out", 0) < 1:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            # what an orchestrator does on /ai/stream/stop or when credit runs out
            for kind in ("in", "out", "control", "events", "data"):
                ch.server.close_channel(f"o-{kind}")
            await wait_idle(client)
        restarted = await client.post("/stream/start", json=ch.start_body())
    assert pipeline.stopped >= 1
    assert restarted.status_code == 200


@pytest.mark.anyio
async def test_bad_channel_urls_end_the_session_cleanly(
    running: Any, trickle_channels: Any
) -> None:
    pipeline = Tracked()
    async with trickle_channels("u") as ch, running(pipeline) as client:
        body = {**ch.start_body(), "subscribe_url": ch.url("missing"), "events_url": "not a url"}
        r = await client.post("/stream/start", json=body)
        await wait_idle(client)
        again = await client.post("/stream/start", json=ch.start_body())
        await client.post("/stream/stop")
    assert (
        r.status_code == 200
    )  # like the AI runner, channels are only dialled once the stream runs
    assert pipeline.stopped == 2
    assert again.status_code == 200


class Threaded(LivePipeline):
    """Sync hooks run off the event loop and can still emit events and data."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def on_stream_start(self, params: dict[str, Any]) -> None:
        self.threads.add(threading.get_ident())
        self.emit_event({"type": "from-start"})

    def process_video(self, frame: Any) -> Any:
        self.threads.add(threading.get_ident())
        self.emit_data({"pts": frame.pts})
        return frame


@pytest.mark.anyio
async def test_sync_hooks_run_in_worker_threads(running: Any, trickle_channels: Any) -> None:
    pipeline = Threaded()
    events: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    loop_thread = threading.get_ident()
    async with (
        trickle_channels("t") as ch,
        running(pipeline) as client,
        anyio.create_task_group() as tg,
    ):

        async def read_rows() -> None:
            async for row in JsonlReader(ch.url("data"), start_seq=0):
                rows.append(row)

        tg.start_soon(read_events, ch.url("events"), events)
        tg.start_soon(read_rows)
        assert (await client.post("/stream/start", json=ch.start_body())).status_code == 200
        await publish_frames(ch.url("in"), 12)
        await wait_idle(client)
        with anyio.fail_after(15):
            while not (events and events[-1].get("state") == "stopped"):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        tg.cancel_scope.deadline = anyio.current_time() + 10
    assert loop_thread not in pipeline.threads
    assert {"type": "from-start"} in events
    assert len(rows) == 12


class Quieter(LivePipeline):
    """Halves the audio volume; counts the audio frames it saw."""

    def __init__(self) -> None:
        self.audio_frames = 0

    def process_audio(self, frame: Any) -> Any:
        import av

        self.audio_frames += 1
        samples = frame.to_ndarray() * 0.5
        out = av.AudioFrame.from_ndarray(
            samples.astype(frame.to_ndarray().dtype),
            format=frame.format.name,
            layout=frame.layout.name,
        )
        out.sample_rate = frame.sample_rate
        return out


@pytest.mark.anyio
async def test_audio_goes_through_process_audio_and_comes_out_on_its_own_track(
    running: Any, trickle_channels: Any
) -> None:
    import av
    import numpy as np

    from livepeer.trickle.media import AudioConfig

    pipeline = Quieter()
    video, audio = [], []
    async with trickle_channels("aud") as ch, running(pipeline) as client:

        async def read_both() -> None:
            async with (
                TrickleSubscriber(ch.url("out"), start_seq=0) as sub,
                MediaSubscriber(sub, audio=True) as frames,
            ):
                async for frame in frames:
                    (audio if isinstance(frame, av.AudioFrame) else video).append(frame)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_both)
            r = await client.post(
                "/stream/start", json=ch.start_body(), headers={"X-Stream-Id": "a1"}
            )
            assert r.status_code == 200
            async with (
                TricklePublisher(ch.url("in")) as pub,
                MediaPublisher(pub, fps=30, audio=AudioConfig()) as media,
            ):
                for i in range(60):
                    await media.write_frame(colour_frame(i))
                    t = (np.arange(1600) + i * 1600) / 48_000
                    tone = (np.sin(2 * np.pi * 440 * t) * 0.5).astype(np.float32).reshape(1, -1)
                    frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                    frame.sample_rate = 48_000
                    await media.write_frame(frame)
            await wait_idle(client)
            tg.cancel_scope.deadline = anyio.current_time() + 10
    assert len(video) == 60
    assert pipeline.audio_frames > 50  # two seconds of 48 kHz audio is ~94 AAC frames
    assert len(audio) > 50
    peak = max(float(np.abs(f.to_ndarray()).max()) for f in audio[5:-5])
    assert 0.15 < peak < 0.35  # the tone's 0.5 amplitude, halved (AAC is lossy)
