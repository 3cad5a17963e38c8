"""Grayscale video: the ``live-video-to-video`` model ``grayscale`` and the BYOC live capability ``live-grayscale``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from livepeer.runner import LivePipeline

if TYPE_CHECKING:
    from av import VideoFrame
    from numpy.typing import NDArray

CAPABILITY = "live-video-to-video"
MODEL_ID = "grayscale"

__all__ = ["CAPABILITY", "MODEL_ID", "Grayscale", "to_gray"]


def to_gray(frame: VideoFrame) -> NDArray[Any]:
    """The frame's luma plane as an HxW uint8 array (colour removed, brightness kept)."""
    return frame.to_ndarray(format="gray")


class Grayscale(LivePipeline):
    """Remove the colour from every video frame (live-video-to-video model "grayscale")."""

    name = CAPABILITY

    def process_video(self, frame: VideoFrame) -> NDArray[Any]:
        return to_gray(frame)
