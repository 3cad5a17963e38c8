"""``live-grayscale``: a BYOC live capability that converts frames to grayscale and reports progress."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livepeer.devnet.samples.grayscale import to_gray
from livepeer.runner import LivePipeline

if TYPE_CHECKING:
    from av import VideoFrame
    from numpy.typing import NDArray

CAPABILITY = "live-grayscale"
PROGRESS_EVERY = 30

__all__ = ["CAPABILITY", "LiveGrayscale"]


class LiveGrayscale(LivePipeline):
    """Convert live video to grayscale; writes a data row every 30 frames with the mean brightness."""

    name = CAPABILITY

    def __init__(self) -> None:
        self.frames = 0

    def on_stream_start(self, params: dict[str, Any]) -> None:
        self.frames = 0
        self.emit_event({"type": "stream_started", "params": params})

    def process_video(self, frame: VideoFrame) -> NDArray[Any]:
        gray = to_gray(frame)
        self.frames += 1
        if self.frames % PROGRESS_EVERY == 0:
            self.emit_data({"frame": self.frames, "mean_luma": round(float(gray.mean()), 2)})
        return gray

    def on_params_update(self, params: dict[str, Any]) -> None:
        self.emit_event({"type": "params_updated", "params": params})

    def on_stream_stop(self) -> None:
        self.emit_event({"type": "stream_stopped", "frames": self.frames})
