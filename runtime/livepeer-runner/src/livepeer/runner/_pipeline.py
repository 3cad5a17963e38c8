"""The two base classes users subclass: :class:`Pipeline` (batch / SSE) and :class:`LivePipeline` (trickle)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from livepeer.runner._errors import RunnerError

if TYPE_CHECKING:
    from av import AudioFrame, VideoFrame
    from numpy.typing import NDArray
    from pydantic import BaseModel

__all__ = ["LivePipeline", "Pipeline"]


class _Described:
    name: ClassVar[str] = ""
    """Capability name announced in ``/`` and ``/openapi.json`` (default: the class name in kebab case)."""
    version: ClassVar[str] = "0.1.0"
    description: ClassVar[str] = ""
    """One paragraph for the schema (default: the class docstring)."""

    def setup(self) -> Awaitable[None] | None:
        """Load models once, before the first request; may be ``async``. ``/health`` says ``loading`` meanwhile."""
        return None

    @classmethod
    def capability_name(cls) -> str:
        if cls.name:
            return cls.name
        return re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()

    @classmethod
    def capability_description(cls) -> str:
        if cls.description:
            return cls.description
        doc = (cls.__doc__ or "").strip()
        return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


class Pipeline(_Described):
    """A request/response capability: define ``predict`` with annotated keyword parameters.

    ``class Reverse(Pipeline):
        def predict(self, text: str) -> dict[str, str]: return {"reversed": text[::-1]}``

    ``predict`` may be sync or async. Returning a value answers JSON; returning (or being) a sync or async
    generator answers ``text/event-stream`` with one ``data:`` event per item and ``data: [DONE]`` last.
    """

    input_model_name: ClassVar[str | None] = None
    """Name of the input schema derived from ``predict`` (default: ``<ClassName>Input``)."""
    extra_inputs: ClassVar[Literal["forbid", "ignore"]] = "forbid"
    """What to do with body fields ``predict`` does not declare: reject them (422) or drop them."""
    output_media_type: ClassVar[str] = "application/octet-stream"
    """Content-Type used when ``predict`` returns ``bytes``."""
    concurrency: ClassVar[int] = 1
    """How many sync ``predict`` calls may run at once (each in a worker thread)."""
    max_body_bytes: ClassVar[int] = 32 * 1024 * 1024
    """Larger request bodies are refused with 413 before they are read."""


class _EventSink(Protocol):
    def event(self, event: Mapping[str, Any]) -> None: ...

    def data(self, data: Mapping[str, Any]) -> None: ...


class LivePipeline(_Described):
    """A live video capability: frames in from trickle, frames out to trickle, one stream at a time.

    ``class Gray(LivePipeline):
        def process_video(self, frame): return frame.to_ndarray(format="gray")``

    Hooks may be sync or async; a hook that is not overridden passes its input through. Sync hooks run in a
    worker thread (one call at a time, in stream order), async hooks on the event loop; ``emit_event`` and
    ``emit_data`` work from both.
    """

    params_model: ClassVar[type[BaseModel] | None] = None
    """Optional pydantic model validating stream params (start and updates); invalid params get 422."""
    heartbeat_interval: ClassVar[float] = 10.0
    """Seconds between ``{"type": "status"}`` events (orchestrators drop a stream after 30 s of silence)."""
    video_codec: ClassVar[str] = "libx264"
    output_fps: ClassVar[int] = 30
    """Nominal output frame rate (timestamps follow the input frames; this sizes the GOP)."""
    output_gop_seconds: ClassVar[float] = 1.0
    """Output GOP length; each GOP is one trickle segment."""

    _sink: _EventSink | None = None

    def on_stream_start(self, params: dict[str, Any]) -> Awaitable[None] | None:
        return None

    def process_video(
        self, frame: VideoFrame
    ) -> VideoFrame | NDArray[Any] | Awaitable[VideoFrame | NDArray[Any]]:
        return frame

    def process_audio(self, frame: AudioFrame) -> AudioFrame | Awaitable[AudioFrame]:
        """Called for each decoded audio frame when the input carries audio; the default passes it through."""
        return frame

    def on_params_update(self, params: dict[str, Any]) -> Awaitable[None] | None:
        return None

    def on_stream_stop(self) -> Awaitable[None] | None:
        return None

    def emit_event(self, event: Mapping[str, Any]) -> None:
        """Queue one JSON object for the events channel: ``self.emit_event({"type": "detections", ...})``."""
        if self._sink is None:
            raise RunnerError("emit_event() called with no active stream")
        self._sink.event(event)

    def emit_data(self, data: Mapping[str, Any]) -> None:
        """Queue one JSON object (one JSONL line) for the data channel, if the stream has one."""
        if self._sink is None:
            raise RunnerError("emit_data() called with no active stream")
        self._sink.data(data)
