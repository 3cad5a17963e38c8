"""``noop``: the ``live-video-to-video`` model that passes frames through unchanged."""

from __future__ import annotations

from livepeer.runner import LivePipeline

CAPABILITY = "live-video-to-video"
MODEL_ID = "noop"

__all__ = ["CAPABILITY", "MODEL_ID", "Noop"]


class Noop(LivePipeline):
    """Pass video through unchanged (live-video-to-video model "noop"); every hook is the default."""

    name = CAPABILITY
