"""livepeer.trickle.media: frames -> one-GOP MPEG-TS segments -> frames."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from types import TracebackType

import anyio
import anyio.lowlevel
import av
import numpy as np
import pytest
from PIL import Image

from livepeer.trickle.media import (
    AudioConfig,
    MediaError,
    MediaPublisher,
    MediaSubscriber,
    SegmentEncoder,
    VideoConfig,
    to_video_frame,
)

W = H = 64


def solid(value: int, shape: tuple[int, ...] = (H, W, 3)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


def segments_of(chunks: list) -> list[bytes]:  # type: ignore[type-arg]
    out: list[bytearray] = []
    for chunk in chunks:
        if chunk.new_segment:
            out.append(bytearray())
        out[-1] += chunk.data
    return [bytes(s) for s in out]


def decode(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        return list(container.decode(video=0))


def test_one_gop_per_segment_and_each_segment_decodes_alone() -> None:
    enc = SegmentEncoder(VideoConfig(fps=10, gop_seconds=1.0))
    chunks = []
    for i in range(25):
        chunks += enc.encode(solid(i * 10))
    chunks += enc.close()
    segments = segments_of(chunks)
    assert [len(decode(s)) for s in segments] == [10, 10, 5]
    assert enc.frames_encoded == 25
    assert enc.close() == []  # idempotent


def test_decoded_pixels_follow_the_input() -> None:
    enc = SegmentEncoder(VideoConfig(fps=5))
    chunks = []
    for value in (30, 200, 30, 200, 120):
        chunks += enc.encode(solid(value))
    chunks += enc.close()
    (segment,) = segments_of(chunks)
    lumas = [float(f.to_ndarray(format="gray").mean()) for f in decode(segment)]
    assert len(lumas) == 5
    # BT.601 limited range maps 30/200/120 to roughly 42/187/119; lossy coding stays close.
    assert lumas[0] < 60
    assert lumas[1] > 170
    assert 100 < lumas[4] < 140


def test_frames_are_scaled_to_the_first_frame_size_and_odd_sizes_are_evened() -> None:
    enc = SegmentEncoder(VideoConfig(fps=5))
    chunks = enc.encode(solid(50, (33, 47, 3))) + enc.encode(solid(60, (100, 100, 3)))
    chunks += enc.close()
    frames = decode(segments_of(chunks)[0])
    assert [(f.width, f.height) for f in frames] == [(46, 32), (46, 32)]


def test_explicit_size_in_config() -> None:
    enc = SegmentEncoder(VideoConfig(fps=5, width=32, height=16))
    chunks = enc.encode(solid(50)) + enc.close()
    (frame,) = decode(segments_of(chunks)[0])
    assert (frame.width, frame.height) == (32, 16)


def test_caller_frame_is_not_mutated() -> None:
    frame = av.VideoFrame.from_ndarray(solid(80), format="rgb24").reformat(format="yuv420p")
    frame.pts = 7
    enc = SegmentEncoder(VideoConfig(fps=5))
    enc.encode(frame)
    enc.close()
    assert frame.pts == 7


@pytest.mark.parametrize(
    ("frame", "fmt"),
    [
        (solid(1, (H, W)), "gray"),
        (solid(1, (H, W, 1)), "gray"),
        (solid(1, (H, W, 3)), "rgb24"),
        (solid(1, (H, W, 4)), "rgba"),
        (Image.new("RGB", (W, H), (10, 20, 30)), "rgb24"),
    ],
)
def test_to_video_frame_accepts_arrays_and_images(frame: object, fmt: str) -> None:
    vf = to_video_frame(frame)
    assert (vf.width, vf.height, vf.format.name) == (W, H, fmt)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not a frame", "unsupported frame type str"),
        (np.zeros((H, W, 3), np.float32), "must be uint8"),
        (np.zeros((H, W, 2), np.uint8), "is not HxW"),
        (np.zeros((2, H, W, 3), np.uint8), "is not HxW"),
    ],
)
def test_to_video_frame_rejects_bad_input_with_a_named_reason(frame: object, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        to_video_frame(frame)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0}, "fps must be positive"),
        ({"gop_seconds": 0}, "gop_seconds must be positive"),
        ({"width": 33}, "width must be a positive even number"),
    ],
)
def test_video_config_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VideoConfig(**kwargs)  # type: ignore[arg-type]


class FakeSegment:
    def __init__(self, store: list[bytearray]) -> None:
        self.store = store

    async def __aenter__(self) -> FakeSegment:
        self.store.append(bytearray())
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def write(self, data: bytes) -> None:
        self.store[-1] += data


class FakePublisher:
    """Stands in for TricklePublisher: records each segment's bytes."""

    def __init__(self) -> None:
        self.segments: list[bytearray] = []

    def segment(self) -> FakeSegment:
        return FakeSegment(self.segments)


class FakeSubscriber:
    """Stands in for TrickleSubscriber: replays segments in small chunks, counting what was pulled."""

    def __init__(self, segments: list[bytes], repeat: int = 1, chunk: int = 1500) -> None:
        self.segments, self.repeat, self.chunk = segments, repeat, chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[AsyncIterator[bytes]]:
        for _ in range(self.repeat):
            for data in self.segments:
                self.pulled += 1
                yield self._chunks(data)

    async def _chunks(self, data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), self.chunk):
            await anyio.lowlevel.checkpoint()
            yield data[i : i + self.chunk]


@pytest.mark.anyio
async def test_publisher_then_subscriber_round_trip() -> None:
    pub = FakePublisher()
    async with MediaPublisher(pub, fps=10) as media:
        for i in range(23):
            await media.write_frame(solid((i * 11) % 256))
        assert media.frames_written == 23
    assert len(pub.segments) == 3 == media.segments_started
    sub = FakeSubscriber([bytes(s) for s in pub.segments])
    with anyio.fail_after(20):
        async with MediaSubscriber(sub) as frames:
            received = [f async for f in frames]
    assert len(received) == 23
    assert all((f.width, f.height) == (W, H) for f in received)


@pytest.mark.anyio
async def test_write_after_close_is_an_error() -> None:
    media = MediaPublisher(FakePublisher(), fps=10)
    await media.aclose()
    await media.aclose()
    with pytest.raises(MediaError, match="closed"):
        await media.write_frame(solid(1))


@pytest.mark.anyio
async def test_slow_consumer_applies_back_pressure_instead_of_buffering() -> None:
    enc = SegmentEncoder(VideoConfig(fps=10))
    chunks = []
    for i in range(10):
        chunks += enc.encode(solid(i * 20))
    chunks += enc.close()
    sub = FakeSubscriber(segments_of(chunks), repeat=200)  # 2000 frames available
    with anyio.fail_after(20):
        async with MediaSubscriber(sub, max_buffered_frames=4, max_buffered_chunks=2) as frames:
            first = await frames.__anext__()
            await anyio.sleep(0.5)  # the consumer stalls; upstream must stop pulling
            pulled_while_stalled = sub.pulled
            await anyio.sleep(0.3)
            assert sub.pulled == pulled_while_stalled
            assert sub.pulled < 10  # nowhere near the 200 segments on offer
            assert first.width == W
    assert frames.frames_decoded < 100


@pytest.mark.anyio
async def test_leaving_early_stops_decoding_promptly() -> None:
    enc = SegmentEncoder(VideoConfig(fps=10))
    chunks = []
    for i in range(10):
        chunks += enc.encode(solid(i))
    chunks += enc.close()
    sub = FakeSubscriber(segments_of(chunks), repeat=10_000)
    with anyio.fail_after(10):
        async with MediaSubscriber(sub) as frames:
            async for _ in frames:
                break
    pulled = sub.pulled
    await anyio.sleep(0.2)
    assert sub.pulled == pulled  # nothing keeps reading after exit


@pytest.mark.anyio
async def test_non_mpegts_input_ends_with_a_typed_error_or_no_frames() -> None:
    sub = FakeSubscriber([b"\x00garbage" * 4000])
    with anyio.fail_after(10):
        async with MediaSubscriber(sub) as frames:
            with pytest.raises(MediaError):
                async for _ in frames:
                    pass


@pytest.mark.anyio
async def test_empty_stream_ends_cleanly() -> None:
    with anyio.fail_after(10):
        async with MediaSubscriber(FakeSubscriber([])) as frames:
            assert [f async for f in frames] == []


def tone(i: int, rate: int = 44_100, samples: int = 441) -> av.AudioFrame:
    """10 ms of a mono s16 sine at 44.1 kHz: a different format, layout and rate than the track's."""
    t = (np.arange(samples) + i * samples) / rate
    frame = av.AudioFrame.from_ndarray(
        (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1),
        format="s16",
        layout="mono",
    )
    frame.sample_rate = rate
    return frame


def decode_all(data: bytes) -> tuple[int, int]:
    """(video frames, audio frames) in one segment, decoded on its own."""
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        assert container.streams.audio, "segment has no audio track"
        video = sum(1 for _ in container.decode(video=0))
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        audio = sum(1 for _ in container.decode(audio=0))
    return video, audio


def test_audio_track_is_muxed_into_every_gop_segment() -> None:
    enc = SegmentEncoder(VideoConfig(fps=10), AudioConfig(sample_rate=48_000, layout="stereo"))
    chunks = []
    for i in range(25):  # 2.5 s of video, with 100 ms of audio per video frame
        chunks += enc.encode(solid(i * 10))
        for j in range(10):
            chunks += enc.encode(tone(i * 10 + j))
    chunks += enc.close()
    counts = [decode_all(s) for s in segments_of(chunks)]
    assert [video for video, _ in counts] == [10, 10, 5]
    # 48 kHz AAC frames are 1024 samples: ~47 per second of audio, spread over the GOPs.
    total_audio = sum(audio for _, audio in counts)
    assert 110 <= total_audio <= 120
    assert all(audio > 0 for _, audio in counts)


def test_audio_before_the_first_video_frame_is_dropped_and_counted() -> None:
    enc = SegmentEncoder(VideoConfig(fps=10), AudioConfig())
    assert enc.encode(tone(0)) == []
    assert enc.audio_frames_dropped == 1


def test_audio_frames_need_an_audio_track() -> None:
    enc = SegmentEncoder(VideoConfig(fps=10))
    enc.encode(solid(1))
    with pytest.raises(MediaError, match="without audio"):
        enc.encode(tone(0))


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"sample_rate": 0}, "sample_rate"), ({"layout": "5.1"}, "layout")]
)
def test_audio_config_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AudioConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_subscriber_yields_audio_only_when_asked() -> None:
    pub = FakePublisher()
    async with MediaPublisher(pub, fps=10, audio=AudioConfig()) as media:
        for i in range(12):
            await media.write_frame(solid(i * 20))
            for j in range(10):
                await media.write_frame(tone(i * 10 + j))
    segments = [bytes(s) for s in pub.segments]
    with anyio.fail_after(20):
        async with MediaSubscriber(FakeSubscriber(segments), audio=True) as frames:
            both = [f async for f in frames]
            assert frames.has_audio is True
        async with MediaSubscriber(FakeSubscriber(segments)) as frames:
            video_only = [f async for f in frames]
    assert sum(isinstance(f, av.VideoFrame) for f in both) == 12
    assert sum(isinstance(f, av.AudioFrame) for f in both) > 40
    assert all(isinstance(f, av.VideoFrame) for f in video_only)
    assert len(video_only) == 12
