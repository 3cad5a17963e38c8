"""Workspace-wide pytest configuration.

Async tests use anyio's pytest plugin (``@pytest.mark.anyio``); asyncio is the default backend and suites
that must also prove trio support parametrize ``anyio_backend`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Encoder = Callable[[str, str, float], bytes]


@pytest.fixture(scope="session")
def encode_audio() -> Encoder:
    """``encode_audio(container, codec, seconds)``: that much silence, encoded by PyAV (libavformat muxers),
    mono, 48 kHz for Opus and 16 kHz otherwise. Real files for the audio-to-text timing tests."""
    import io

    import av
    import numpy as np

    def encode(container: str, codec: str, seconds: float) -> bytes:
        rate = 48000 if "opus" in codec else 16000
        buf = io.BytesIO()
        with av.open(buf, "w", format=container) as out:
            stream = out.add_stream(codec, rate=rate)
            stream.layout = "mono"
            total, done = round(seconds * rate), 0
            while done < total:
                n = min(1024, total - done)
                frame = av.AudioFrame.from_ndarray(
                    np.zeros((1, n), dtype=np.int16), format="s16", layout="mono"
                )
                frame.sample_rate, frame.pts = rate, done
                out.mux(stream.encode(frame))
                done += n
            out.mux(stream.encode(None))
        return buf.getvalue()

    return encode
