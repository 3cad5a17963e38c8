"""Live sessions for a :class:`LivePipeline`: the worker side of PROTOCOL.md §7 (BYOC live) and §8.3.

``POST /stream/start`` (body: trickle URLs + ``params``; header ``X-Stream-Id``) starts one session; a second
start while one runs gets 409. The session subscribes to ``subscribe_url`` (MPEG-TS from the client), decodes
frames (``livepeer.trickle.media``, PyAV in worker threads), calls ``process_video`` on each and publishes the
re-encoded frames on ``publish_url``, one GOP per segment. ``control_url`` messages (one JSON object per
segment, keepalives dropped) and ``POST /stream/params`` bodies are parameter updates; a body or message of the
form ``{"params": {...}}`` is unwrapped. Events go to ``events_url`` as one JSON object per segment: whatever
``emit_event`` queues, plus ``{"type": "status", ...}`` at start, every ``heartbeat_interval`` seconds and at the
end. ``emit_data`` writes JSONL lines to ``data_url``. The session ends on ``POST /stream/stop`` or when the
input channel ends; then ``on_stream_stop`` runs, the output and event channels are closed (which tells their
readers the stream is over) and the runner accepts a new start.

``POST /live-video-to-video`` is an alias of ``/stream/start`` taking the AI runner's
``LiveVideoToVideoParams`` (``model_id`` and ``manifest_id`` are accepted and ignored) and answering its
``LiveVideoToVideoResponse`` shape, so an orchestrator can start the LV2V samples the way it starts ai-runner.

Audio: when the input carries an audio track, its frames go through ``process_audio`` and the output gets an
AAC track of its own; a video-only input produces a video-only output (no empty audio track for players to
wait on). The output publisher is therefore opened once the input has been probed.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import ValidationError as PydanticValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from livepeer.runner._errors import PipelineError
from livepeer.runner._openapi import LiveStreamStart
from livepeer.runner._pipeline import LivePipeline
from livepeer.runner._responses import (
    error_response,
    pydantic_errors,
    read_json_object,
    validation_response,
)
from livepeer.runner._runtime import Runtime, maybe_await

__all__ = ["LiveApp"]

log = logging.getLogger("livepeer.runner")

_QUEUE = 256
_STOP_TIMEOUT = 10.0
_FLUSH_TIMEOUT = 5.0


async def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    """Await an async hook on the loop; run a sync one in a worker thread so a slow model cannot stall
    heartbeats, control messages or HTTP (calls stay sequential: the session awaits each one)."""
    if inspect.iscoroutinefunction(hook):
        return await hook(*args)
    if getattr(hook, "__func__", None) in _DEFAULT_HOOKS:
        return hook(*args)  # the base class's passthroughs cost nothing: no thread hop per frame
    return await maybe_await(await anyio.to_thread.run_sync(hook, *args))


_DEFAULT_HOOKS = {
    LivePipeline.on_stream_start,
    LivePipeline.process_video,
    LivePipeline.process_audio,
    LivePipeline.on_params_update,
    LivePipeline.on_stream_stop,
}


def _unwrap(params: dict[str, Any]) -> dict[str, Any]:
    inner = params.get("params")
    if len(params) == 1 and isinstance(inner, dict):
        return inner
    return params


class _Session:
    """One running stream: media loop, control reader, heartbeat and the event/data writers."""

    def __init__(
        self, app: LiveApp, start: LiveStreamStart, stream_id: str, params: dict[str, Any]
    ) -> None:
        self.app = app
        self.pipeline = app.instance
        self.start = start
        self.stream_id = stream_id
        self.params = params
        self.frames_in = 0
        self.frames_out = 0
        self.started_at = time.time()
        self.last_params_update: float | None = None
        self.last_error: str | None = None
        self.last_error_time: float | None = None
        self.dropped_events = 0
        self.finished = anyio.Event()
        self._work: anyio.CancelScope | None = None
        self._stop_requested = False
        self._finished_hooks = False
        self._loop_thread = threading.get_ident()
        self._events_send: MemoryObjectSendStream[dict[str, Any]]
        self._events_recv: MemoryObjectReceiveStream[dict[str, Any]]
        self._events_send, self._events_recv = anyio.create_memory_object_stream(_QUEUE)
        self._data_send: MemoryObjectSendStream[dict[str, Any]]
        self._data_recv: MemoryObjectReceiveStream[dict[str, Any]]
        self._data_send, self._data_recv = anyio.create_memory_object_stream(_QUEUE)

    # -- sink used by LivePipeline.emit_event / emit_data (sync: hooks run on the event loop) --

    def event(self, event: Mapping[str, Any]) -> None:
        self._queue(self._events_send, dict(event), bool(self.start.events_url))

    def data(self, data: Mapping[str, Any]) -> None:
        self._queue(self._data_send, dict(data), bool(self.start.data_url))

    def _queue(
        self, stream: MemoryObjectSendStream[dict[str, Any]], obj: dict[str, Any], wanted: bool
    ) -> None:
        if not wanted:
            return
        if threading.get_ident() != self._loop_thread:
            # Called from a sync hook in a worker thread: memory streams belong to the event loop.
            try:
                anyio.from_thread.run_sync(self._queue, stream, obj, wanted)
            except RuntimeError:  # not an anyio worker thread, or the loop is gone
                self.dropped_events += 1
            return
        try:
            stream.send_nowait(obj)
        except anyio.WouldBlock:
            self.dropped_events += 1  # a stalled channel must not stall the pipeline
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def status_event(self, state: str) -> dict[str, Any]:
        elapsed = max(time.time() - self.started_at, 1e-9)
        return {
            "type": "status",
            "state": state,
            "stream_id": self.stream_id,
            "gateway_request_id": self.start.gateway_request_id,
            "timestamp": int(time.time() * 1000),
            "inference_status": {
                "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "fps": round(self.frames_out / elapsed, 3),
                "last_params": self.params,
                "last_params_update_time": self.last_params_update,
                "last_error": self.last_error,
                "last_error_time": self.last_error_time,
            },
        }

    def record_error(self, message: str) -> None:
        # Repeated failures (e.g. every frame) produce one event per distinct message, not a flood.
        if message != self.last_error:
            self.event({"type": "error", "message": message, "stream_id": self.stream_id})
        self.last_error = message
        self.last_error_time = time.time()

    def request_stop(self) -> None:
        self._stop_requested = True
        if self._work is not None:
            self._work.cancel()

    async def update_params(self, params: dict[str, Any]) -> None:
        await call_hook(self.pipeline.on_params_update, params)
        self.params = params
        self.last_params_update = time.time()

    # -- the session's life --

    async def run(self) -> None:
        try:
            await self._run()
        except Exception:
            log.exception("live stream %s failed", self.stream_id)
        finally:
            if (
                not self._finished_hooks
            ):  # _run failed before its own cleanup (e.g. a bad channel URL)
                with anyio.CancelScope(shield=True):
                    await self._finish()
            self.app.session_ended(self)
            self.finished.set()

    async def _run(self) -> None:
        from livepeer.trickle import JsonlWriter, JsonSegmentWriter

        async with AsyncExitStack() as stack:
            events = data = None
            if self.start.events_url:
                events = await stack.enter_async_context(
                    JsonSegmentWriter(self.start.events_url, keepalive_interval=None)
                )
            if self.start.data_url:
                data = await stack.enter_async_context(JsonlWriter(self.start.data_url))
            async with anyio.create_task_group() as pumps:
                pumps.start_soon(self._pump, self._events_recv, events, "events")
                pumps.start_soon(self._pump, self._data_recv, data, "data")
                try:
                    with anyio.CancelScope() as work:
                        self._work = work
                        if not self._stop_requested:
                            async with anyio.create_task_group() as tg:
                                tg.start_soon(self._heartbeat)
                                if self.start.control_url:
                                    tg.start_soon(self._control)
                                try:
                                    await self._media()
                                except Exception as exc:  # channel gone, undecodable input, ...
                                    log.warning(
                                        "stream %s: media loop ended: %r", self.stream_id, exc
                                    )
                                    self.record_error(f"media: {type(exc).__name__}: {exc}")
                                tg.cancel_scope.cancel()
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._finish()
                        pumps.cancel_scope.deadline = anyio.current_time() + _FLUSH_TIMEOUT

    async def _finish(self) -> None:
        self._finished_hooks = True
        try:
            await call_hook(self.pipeline.on_stream_stop)
        except Exception as exc:
            log.exception("on_stream_stop() failed")
            self.record_error(f"on_stream_stop: {type(exc).__name__}: {exc}")
        self.event(self.status_event("stopped"))
        self.pipeline._sink = None
        self._events_send.close()
        self._data_send.close()

    async def _pump(
        self, receive: MemoryObjectReceiveStream[dict[str, Any]], writer: Any, channel: str
    ) -> None:
        from livepeer.trickle import TrickleError

        async with receive:
            async for obj in receive:
                if writer is None:
                    continue
                try:
                    await writer.write(obj)
                except TrickleError as exc:
                    log.warning(
                        "stream %s: %s channel write failed: %s", self.stream_id, channel, exc
                    )

    async def _heartbeat(self) -> None:
        interval = self.pipeline.heartbeat_interval
        while True:
            self.event(self.status_event("running"))
            await anyio.sleep(interval)

    async def _control(self) -> None:
        from livepeer.trickle import JsonChannelError, JsonSegmentReader, TrickleError

        try:
            async with JsonSegmentReader(self.start.control_url) as reader:
                while True:
                    try:
                        message = await reader.__anext__()
                    except StopAsyncIteration:
                        return
                    except JsonChannelError as exc:
                        self.record_error(f"control: {exc}")
                        continue
                    params = self.app.validate_params(_unwrap(message))
                    if isinstance(params, list):
                        self.record_error(f"control: invalid params: {params}")
                        continue
                    try:
                        await self.update_params(params)
                    except Exception as exc:
                        log.exception("on_params_update() failed")
                        self.record_error(f"on_params_update: {type(exc).__name__}: {exc}")
        except TrickleError as exc:
            log.warning("stream %s: control channel ended: %s", self.stream_id, exc)

    async def _media(self) -> None:
        if not self.start.subscribe_url:
            await anyio.sleep_forever()  # nothing to read: the stream lives until /stream/stop
        from livepeer.trickle import TricklePublisher, TrickleSubscriber
        from livepeer.trickle.media import AudioConfig, MediaPublisher, MediaSubscriber, VideoConfig

        cls = type(self.pipeline)
        async with AsyncExitStack() as stack:
            sub = await stack.enter_async_context(TrickleSubscriber(self.start.subscribe_url))
            frames = await stack.enter_async_context(MediaSubscriber(sub, audio=True))
            pub = None
            if self.start.publish_url:
                pub = await stack.enter_async_context(
                    TricklePublisher(self.start.publish_url, "video/mp2t")
                )
            out: MediaPublisher | None = None
            async for frame in frames:
                if out is None and pub is not None:
                    # Opened on the first decoded frame: by then the input has been probed, so the
                    # output declares an audio track exactly when the input has one.
                    config = VideoConfig(
                        fps=cls.output_fps,
                        gop_seconds=cls.output_gop_seconds,
                        codec=cls.video_codec,
                    )
                    audio = AudioConfig() if frames.has_audio else None
                    out = await stack.enter_async_context(MediaPublisher(pub, config, audio=audio))
                is_audio = type(frame).__name__ == "AudioFrame"
                hook = self.pipeline.process_audio if is_audio else self.pipeline.process_video
                if not is_audio:
                    self.frames_in += 1
                try:
                    result = await call_hook(hook, frame)
                except Exception as exc:
                    name = "process_audio" if is_audio else "process_video"
                    log.debug("%s() failed", name, exc_info=True)
                    self.record_error(f"{name}: {type(exc).__name__}: {exc}")
                    result = frame  # keep the output flowing: pass the input through
                if out is None:
                    continue
                if is_audio:
                    await out.write_frame(result)
                else:
                    await out.write_frame(result, pts_seconds=frame.time)
                    self.frames_out += 1


class LiveApp:
    """The routes of a live runner, and its one-session-at-a-time bookkeeping."""

    def __init__(self, runtime: Runtime, instance: LivePipeline) -> None:
        self.runtime = runtime
        self.instance = instance
        self.session: _Session | None = None
        self._starting = False

    def routes(self) -> list[Route]:
        return [
            Route("/", self.info, methods=["GET"]),
            Route("/stream/start", self.start, methods=["POST"]),
            Route("/live-video-to-video", self.start_lv2v, methods=["POST"]),
            Route("/stream/params", self.params, methods=["POST"]),
            Route("/stream/stop", self.stop, methods=["POST"]),
            Route("/stream/status", self.status, methods=["GET"]),
        ]

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        """Validated params, or the 422 error list (locations relative to the params object)."""
        model = type(self.instance).params_model
        if model is None:
            return params
        try:
            return model.model_validate(params).model_dump(mode="json")
        except PydanticValidationError as exc:
            return pydantic_errors(exc, ())

    def session_ended(self, session: _Session) -> None:
        if self.session is session:
            self.session = None

    async def info(self, request: Request) -> Response:
        return JSONResponse(self.runtime.info_body(["live"]))

    async def status(self, request: Request) -> Response:
        session = self.session
        if session is None:
            return JSONResponse({"status": "idle", "stream_id": None})
        return JSONResponse(
            {
                "status": "running",
                "stream_id": session.stream_id,
                "frames_in": session.frames_in,
                "frames_out": session.frames_out,
                "params": session.params,
            }
        )

    async def start(self, request: Request) -> Response:
        return await self._guarded_start(request, lv2v=False)

    async def start_lv2v(self, request: Request) -> Response:
        """The AI runner's ``POST /live-video-to-video``: same session, upstream response shape."""
        return await self._guarded_start(request, lv2v=True)

    async def _guarded_start(self, request: Request, *, lv2v: bool) -> Response:
        runtime = self.runtime
        denied = runtime.check_auth(request)
        if denied is not None:
            return denied
        await runtime.ensure_setup()
        unavailable = runtime.not_ready()
        if unavailable is not None:
            return unavailable
        if self.session is not None or self._starting:
            return error_response(409, "a stream is already running")
        if runtime.task_group is None:
            return error_response(503, "live streams need a server that runs the ASGI lifespan")
        self._starting = True  # claim the slot before the first await: a concurrent start gets 409
        try:
            return await self._start(request, runtime.task_group, lv2v)
        finally:
            self._starting = False

    async def _start(
        self, request: Request, task_group: anyio.abc.TaskGroup, lv2v: bool
    ) -> Response:
        body = await read_json_object(request)
        if isinstance(body, Response):
            return body
        try:
            start = LiveStreamStart.model_validate(body)
        except PydanticValidationError as exc:
            return validation_response(pydantic_errors(exc, ("body",)))
        # go-livepeer's gateway sends {"params": null} when the stream was started without params.
        params = self.validate_params(start.params or {})
        if isinstance(params, list):
            return validation_response(
                [{**e, "loc": ["body", "params", *e["loc"]]} for e in params]
            )
        stream_id = (
            request.headers.get("x-stream-id")
            or start.stream_id
            or start.gateway_request_id
            or uuid.uuid4().hex
        )
        session = _Session(self, start, stream_id, params)
        self.instance._sink = session
        try:
            await call_hook(self.instance.on_stream_start, params)
        except Exception as exc:
            self.instance._sink = None
            if isinstance(exc, PipelineError):
                return error_response(exc.status_code, exc.message)
            log.exception("on_stream_start() failed")
            return error_response(500, f"{type(exc).__name__}: {exc}")
        self.session = session
        task_group.start_soon(session.run)
        if lv2v:
            return JSONResponse(
                {
                    "subscribe_url": start.subscribe_url,
                    "publish_url": start.publish_url,
                    "control_url": start.control_url,
                    "events_url": start.events_url,
                    "request_id": start.gateway_request_id,
                    "manifest_id": str(body.get("manifest_id", "")),
                }
            )
        return JSONResponse({"status": "started", "stream_id": stream_id})

    async def params(self, request: Request) -> Response:
        denied = self.runtime.check_auth(request)
        if denied is not None:
            return denied
        session = self.session
        if session is None:
            return error_response(409, "no stream is running")
        body = await read_json_object(request)
        if isinstance(body, Response):
            return body
        params = self.validate_params(_unwrap(body))
        if isinstance(params, list):
            return validation_response([{**e, "loc": ["body", *e["loc"]]} for e in params])
        try:
            await session.update_params(params)
        except PipelineError as exc:
            return error_response(exc.status_code, exc.message)
        except Exception as exc:
            log.exception("on_params_update() failed")
            return error_response(500, f"{type(exc).__name__}: {exc}")
        return JSONResponse({"status": "updated", "stream_id": session.stream_id})

    async def stop(self, request: Request) -> Response:
        denied = self.runtime.check_auth(request)
        if denied is not None:
            return denied
        session = self.session
        if session is None:
            return JSONResponse({"status": "idle", "stream_id": None})
        session.request_stop()
        with anyio.move_on_after(_STOP_TIMEOUT):
            await session.finished.wait()
        return JSONResponse({"status": "stopped", "stream_id": session.stream_id})

    async def shutdown(self) -> None:
        session = self.session
        if session is not None:
            session.request_stop()
            await session.finished.wait()
