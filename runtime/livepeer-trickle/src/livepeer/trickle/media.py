"""MPEG-TS video over trickle: frames in, one GOP per segment out; segments in, decoded frames out.

Live channels carry MPEG-TS with one GOP per trickle segment (PROTOCOL.md §8.3, §9.2), so every segment starts
with PAT/PMT and an IDR frame and can be decoded on its own — which is what lets a late or lagging subscriber
join at any segment. We get that by keeping one H.264 encoder for the whole stream (continuous GOP cadence,
rate control) and opening a fresh MPEG-TS muxer for every GOP; the muxer flushes after every packet, so the
bytes of a segment reach the network while the GOP is still being encoded.

    async with TricklePublisher(url) as pub, MediaPublisher(pub, fps=30) as media:
        await media.write_frame(numpy_rgb_array)

    async with TrickleSubscriber(url) as sub, MediaSubscriber(sub) as frames:
        async for frame in frames: ...   # av.VideoFrame

PyAV (and numpy/Pillow for conversions) is imported lazily: `import livepeer.trickle` never pays for it.
Install it with the `media` extra of livepeer-trickle.

Back-pressure, not buffering: `MediaSubscriber` keeps at most `max_buffered_frames` decoded frames and a few
undecoded chunks. A consumer slower than the stream stops the decoder, which stops reading the subscriber, which
falls behind the orchestrator's 5-segment ring and is moved to the live edge (470 → `Lp-Trickle-Latest`). Memory
stays bounded and the consumer sees the newest frames, at the price of skipped segments.

Encoding and decoding run in worker threads (they are CPU-bound and PyAV releases the GIL while coding).

Audio: a publisher opened with ``audio=AudioConfig()`` also accepts ``av.AudioFrame``s, resampled and encoded
to AAC and muxed into the same GOP segments (segments are still cut at video keyframes, so audio written before
the first video frame is dropped and counted). ``MediaSubscriber(audio=True)`` yields audio frames as well;
by default only video is decoded.
"""

from __future__ import annotations

import io
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

if TYPE_CHECKING:
    import av

__all__ = [
    "AudioConfig",
    "EncodedChunk",
    "MediaError",
    "MediaPublisher",
    "MediaSubscriber",
    "SegmentEncoder",
    "VideoConfig",
    "to_video_frame",
]

MPEGTS_TIME_BASE = Fraction(1, 90_000)


class MediaError(Exception):
    """A frame could not be converted, encoded or decoded."""


class _SegmentSink(Protocol):
    async def write(self, data: bytes) -> Any: ...


class _SegmentContext(Protocol):
    async def __aenter__(self) -> _SegmentSink: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


class _Publisher(Protocol):
    def segment(self) -> _SegmentContext: ...


class _Segment(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...


class _Subscriber(Protocol):
    def __aiter__(self) -> AsyncIterator[_Segment]: ...


@dataclass(frozen=True)
class VideoConfig:
    """How frames are encoded. Width and height default to the first frame's."""

    fps: int = 30
    gop_seconds: float = 1.0
    width: int | None = None
    height: int | None = None
    codec: str = "libx264"
    bit_rate: int | None = None
    # Low-latency defaults: no B-frames (no reordering delay), zerolatency tuning, no scene-cut keyframes so
    # segments are exactly one GOP long.
    codec_options: dict[str, str] = field(
        default_factory=lambda: {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "bf": "0",
            "sc_threshold": "0",
        }
    )

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if not self.gop_seconds > 0:
            raise ValueError(f"gop_seconds must be positive, got {self.gop_seconds}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value <= 0 or value % 2):
                raise ValueError(f"{name} must be a positive even number, got {value}")

    @property
    def gop_frames(self) -> int:
        return max(1, round(self.fps * self.gop_seconds))


@dataclass(frozen=True)
class AudioConfig:
    """Audio track of a published stream (AAC in MPEG-TS, as live runners expect)."""

    sample_rate: int = 48_000
    layout: str = "stereo"
    codec: str = "aac"
    bit_rate: int | None = None

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.layout not in ("mono", "stereo"):
            raise ValueError(f"layout must be 'mono' or 'stereo', got {self.layout!r}")


@dataclass(frozen=True)
class EncodedChunk:
    """Bytes of the MPEG-TS stream; `new_segment` marks the first chunk of a GOP (a new trickle segment)."""

    new_segment: bool
    data: bytes


def to_video_frame(frame: object) -> av.VideoFrame:
    """Accept an `av.VideoFrame`, a numpy array (HxW gray, HxWx3 RGB, HxWx4 RGBA, uint8) or a PIL image."""
    import av

    if isinstance(frame, av.VideoFrame):
        return frame
    if type(frame).__module__.startswith("PIL."):
        image: av.VideoFrame = av.VideoFrame.from_image(frame)  # type: ignore[no-untyped-call]
        return image
    shape = getattr(frame, "shape", None)
    if shape is None:
        raise MediaError(
            f"unsupported frame type {type(frame).__name__}: "
            "expected av.VideoFrame, a numpy uint8 array or a PIL image"
        )
    dtype = str(getattr(frame, "dtype", ""))
    if dtype != "uint8":
        raise MediaError(f"numpy frames must be uint8, got {dtype}")
    if len(shape) == 2:
        fmt = "gray"
    elif len(shape) == 3 and shape[2] in (1, 3, 4):
        fmt = {1: "gray", 3: "rgb24", 4: "rgba"}[shape[2]]
        if shape[2] == 1:
            frame = frame[:, :, 0]  # type: ignore[index]
    else:
        raise MediaError(f"numpy frame shape {tuple(shape)} is not HxW, HxWx1, HxWx3 or HxWx4")
    array: Any = frame
    return av.VideoFrame.from_ndarray(array, format=fmt)


class _Collector(io.RawIOBase):
    """Write-only file object that hands out what the muxer wrote since the last `take()`."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


class SegmentEncoder:
    """Synchronous frame → MPEG-TS encoder that starts a new segment at every keyframe.

    ``chunks = enc.encode(frame)``; ``chunks += enc.close()``. Not thread-safe; CPU-bound (run it in a worker
    thread from async code, as `MediaPublisher` does).
    """

    def __init__(self, config: VideoConfig | None = None, audio: AudioConfig | None = None) -> None:
        self.config = config or VideoConfig()
        self.audio = audio
        self._audio_encoder: Any = None
        self._audio_template: Any = None
        self._audio_stream: Any = None
        self._resampler: Any = None
        self._fifo: Any = None
        self._audio_samples = 0
        self.audio_frames_dropped = 0
        self._encoder: Any = None
        self._template: Any = None
        self._muxer: Any = None
        self._stream: Any = None
        self._sink = _Collector()
        self._frames = 0
        self._last_pts = -1
        self._closed = False

    @property
    def frames_encoded(self) -> int:
        return self._frames

    def _open(self, width: int, height: int) -> None:
        import av

        cfg = self.config
        rate = Fraction(cfg.fps, 1)
        # The template stream only carries codec parameters for each per-segment muxer; it never muxes.
        template_container = av.open(io.BytesIO(), "w", format="mpegts")
        template: Any = template_container.add_stream(cfg.codec, rate=rate)
        template.width, template.height, template.pix_fmt = width, height, "yuv420p"
        encoder: Any = av.CodecContext.create(cfg.codec, "w")
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        encoder.time_base = MPEGTS_TIME_BASE
        encoder.framerate = rate
        encoder.gop_size = cfg.gop_frames
        if cfg.bit_rate:
            encoder.bit_rate = cfg.bit_rate
        encoder.options = dict(cfg.codec_options)
        encoder.open()
        self._encoder, self._template = encoder, template
        self._template_container = template_container
        if self.audio is not None:
            self._open_audio(self.audio)

    def _open_audio(self, cfg: AudioConfig) -> None:
        import av

        # The template stream's own codec context is the encoder: MPEG-TS needs the AAC AudioSpecificConfig
        # (extradata) to write ADTS headers, and a stream only carries it once its container has started.
        container = av.open(io.BytesIO(), "w", format="mpegts")
        stream: Any = container.add_stream(cfg.codec, rate=cfg.sample_rate)
        stream.layout = cfg.layout
        ctx = stream.codec_context
        ctx.sample_rate, ctx.layout, ctx.format = cfg.sample_rate, cfg.layout, "fltp"
        ctx.time_base = Fraction(1, cfg.sample_rate)
        if cfg.bit_rate:
            ctx.bit_rate = cfg.bit_rate
        ctx.open()
        container.start_encoding()
        self._audio_template_container = container
        self._audio_template, self._audio_encoder = stream, ctx
        self._resampler = av.AudioResampler(format="fltp", layout=cfg.layout, rate=cfg.sample_rate)
        self._fifo = av.AudioFifo()

    def _size_for(self, frame: av.VideoFrame) -> tuple[int, int]:
        width = self.config.width or frame.width - frame.width % 2
        height = self.config.height or frame.height - frame.height % 2
        if width <= 0 or height <= 0:
            raise MediaError(f"frame of {frame.width}x{frame.height} is too small to encode")
        return width, height

    def encode(self, frame: object, *, pts_seconds: float | None = None) -> list[EncodedChunk]:
        """Encode one frame; returns the MPEG-TS bytes that are ready (possibly none)."""
        if self._closed:
            raise MediaError("encoder is closed")
        if type(frame).__name__ == "AudioFrame":
            return self._encode_audio(frame)
        vf = to_video_frame(frame)
        if self._encoder is None:
            self._open(*self._size_for(vf))
        width, height = self._encoder.width, self._encoder.height
        if vf.width != width or vf.height != height or vf.format.name != "yuv420p":
            vf = vf.reformat(width=width, height=height, format="yuv420p")
        pts = self._next_pts(pts_seconds)
        # `vf` may be the caller's own frame (reformat() returns self when nothing changes): restore its
        # timestamps afterwards. libavcodec copies frame properties when the frame is sent.
        saved_pts, saved_time_base = vf.pts, vf.time_base
        vf.pts, vf.time_base = pts, MPEGTS_TIME_BASE
        try:
            packets = self._encoder.encode(vf)
        finally:
            if vf is frame:
                vf.pts = saved_pts
                if saved_time_base is not None:  # PyAV cannot reset a time base to "unset"
                    vf.time_base = saved_time_base
        self._frames += 1
        return self._mux(packets)

    def _next_pts(self, pts_seconds: float | None) -> int:
        if pts_seconds is not None:
            pts = round(pts_seconds * 90_000)
        else:
            # Constant frame rate from the frame count: frames from generators and files rarely carry
            # meaningful timestamps, and the orchestrator only needs monotonic ones.
            pts = round(self._frames * 90_000 / self.config.fps)
        if pts <= self._last_pts:  # timestamps must increase strictly for the muxer
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def _encode_audio(self, frame: Any) -> list[EncodedChunk]:
        """Resample to the encoder's format, re-chunk to its frame size, encode, mux into this GOP."""
        if self.audio is None:
            raise MediaError("this stream was opened without audio: pass audio=AudioConfig()")
        if self._audio_encoder is None:
            # Segments are cut at video keyframes, so audio waits for the first video frame.
            self.audio_frames_dropped += 1
            return []
        enc, fifo = self._audio_encoder, self._fifo
        for resampled in self._resampler.resample(frame):
            fifo.write(resampled)
        packets: list[Any] = []
        while fifo.samples >= enc.frame_size:
            packets += enc.encode(self._next_audio_chunk(fifo.read(enc.frame_size)))
        return self._mux_audio(packets)

    def _next_audio_chunk(self, chunk: Any) -> Any:
        chunk.pts = self._audio_samples
        chunk.time_base = Fraction(1, self._audio_encoder.sample_rate)
        self._audio_samples += chunk.samples
        return chunk

    def _mux_audio(self, packets: list[Any]) -> list[EncodedChunk]:
        chunks: list[EncodedChunk] = []
        if self._muxer is None:
            return chunks
        for packet in packets:
            packet.stream = self._audio_stream
            self._muxer.mux(packet)
            data = self._sink.take()
            if data:
                chunks.append(EncodedChunk(False, data))
        return chunks

    def _mux(self, packets: list[Any]) -> list[EncodedChunk]:
        import av

        chunks: list[EncodedChunk] = []
        for packet in packets:
            if packet.is_keyframe or self._muxer is None:
                chunks += self._finish_segment()
                self._muxer = av.open(
                    self._sink, "w", format="mpegts", options={"flush_packets": "1"}
                )
                self._stream = self._muxer.add_stream_from_template(self._template)
                if self._audio_template is not None:
                    self._audio_stream = self._muxer.add_stream_from_template(self._audio_template)
                new_segment = True
            else:
                new_segment = False
            packet.stream = self._stream
            self._muxer.mux(packet)
            data = self._sink.take()
            if data or new_segment:
                chunks.append(EncodedChunk(new_segment, data))
        return chunks

    def _finish_segment(self) -> list[EncodedChunk]:
        if self._muxer is None:
            return []
        self._muxer.close()
        self._muxer = None
        data = self._sink.take()
        return [EncodedChunk(False, data)] if data else []

    def close(self) -> list[EncodedChunk]:
        """Flush the encoder and finish the last segment. Idempotent."""
        if self._closed:
            return []
        self._closed = True
        if self._encoder is None:
            return []
        chunks = self._mux(self._encoder.encode(None))
        if self._audio_encoder is not None:
            tail: list[Any] = []
            if self._fifo.samples:
                tail += self._audio_encoder.encode(self._next_audio_chunk(self._fifo.read()))
            tail += self._audio_encoder.encode(None)
            chunks += self._mux_audio(tail)
            self._audio_template_container.close()
        chunks += self._finish_segment()
        self._encoder = None  # PyAV frees codec contexts on garbage collection; there is no close()
        self._template_container.close()
        return chunks


class MediaPublisher:
    """Encode frames and publish them on a trickle channel, one GOP per segment.

    ``async with MediaPublisher(trickle_publisher, fps=30) as media: await media.write_frame(frame)``
    """

    def __init__(
        self,
        publisher: _Publisher,
        config: VideoConfig | None = None,
        *,
        fps: int | None = None,
        audio: AudioConfig | None = None,
    ) -> None:
        if config is not None and fps is not None and config.fps != fps:
            raise ValueError("pass fps either directly or in config, not both")
        self._publisher = publisher
        # MPEG-TS muxers fix their streams when they write the header: an audio track must be
        # declared before the first segment, not discovered with the first audio frame.
        self._encoder = SegmentEncoder(config or VideoConfig(fps=fps or 30), audio)
        self._segment_cm: _SegmentContext | None = None
        self._segment: _SegmentSink | None = None
        self._lock = anyio.Lock()
        self._closed = False
        self.segments_started = 0

    @property
    def frames_written(self) -> int:
        return self._encoder.frames_encoded

    async def write_frame(self, frame: object, *, pts_seconds: float | None = None) -> None:
        """Encode one frame and send its bytes.

        Video: ``av.VideoFrame``, numpy uint8 array or PIL image. Audio (when opened with ``audio=``):
        ``av.AudioFrame`` in any format, layout and rate (resampled to the track's).
        """
        async with self._lock:
            if self._closed:
                raise MediaError("media publisher is closed")
            chunks = await anyio.to_thread.run_sync(
                lambda: self._encoder.encode(frame, pts_seconds=pts_seconds)
            )
            await self._send(chunks)

    async def _send(self, chunks: list[EncodedChunk]) -> None:
        for chunk in chunks:
            if chunk.new_segment:
                await self._end_segment()
                self._segment_cm = self._publisher.segment()
                self._segment = await self._segment_cm.__aenter__()
                self.segments_started += 1
            if chunk.data and self._segment is not None:
                await self._segment.write(chunk.data)

    async def _end_segment(self) -> None:
        cm, self._segment_cm, self._segment = self._segment_cm, None, None
        if cm is not None:
            await cm.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Flush the encoder and end the last segment. Idempotent; does not close the trickle publisher."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                with anyio.CancelScope(shield=True):
                    chunks = await anyio.to_thread.run_sync(self._encoder.close)
                    await self._send(chunks)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._end_segment()

    async def __aenter__(self) -> MediaPublisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _ChunkPipe(io.RawIOBase):
    """Blocking read side for the decoder thread, fed from the event loop through a memory stream."""

    def __init__(self, receive: MemoryObjectReceiveStream[bytes]) -> None:
        super().__init__()
        self._receive = receive
        self._pending = b""
        self._eof = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._eof:
            try:
                self._pending = anyio.from_thread.run(self._receive.receive)
            except BaseException:
                # End of stream, a closed stream, cancellation of the host task or a vanished event loop
                # all mean the same thing to the demuxer: no more input. Raising here would only turn into
                # an opaque I/O error inside FFmpeg.
                self._eof = True
        n = min(len(buffer), len(self._pending))
        self.bytes_read += n
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class MediaSubscriber:
    """Decode the MPEG-TS segments of a trickle subscriber into `av.VideoFrame`s.

    ``async with MediaSubscriber(trickle_subscriber) as frames: async for frame in frames: ...``
    """

    def __init__(
        self,
        subscriber: _Subscriber,
        *,
        max_buffered_frames: int = 8,
        max_buffered_chunks: int = 16,
        audio: bool = False,
    ) -> None:
        if max_buffered_frames < 1 or max_buffered_chunks < 1:
            raise ValueError("buffer sizes must be at least 1")
        self._subscriber = subscriber
        self._audio = audio
        self.has_audio: bool | None = None
        """Whether the input carries an audio track (None until the stream was probed)."""
        self._chunks_send, self._chunks_recv = anyio.create_memory_object_stream[bytes](
            max_buffered_chunks
        )
        self._frames_send: MemoryObjectSendStream[av.VideoFrame | av.AudioFrame]
        self._frames_recv: MemoryObjectReceiveStream[av.VideoFrame | av.AudioFrame]
        self._frames_send, self._frames_recv = anyio.create_memory_object_stream(
            max_buffered_frames
        )
        self._tg: anyio.abc.TaskGroup | None = None
        self._error: BaseException | None = None
        self._feed_error: Exception | None = None
        self._stop = threading.Event()
        self.segments_received = 0
        self.frames_decoded = 0

    async def __aenter__(self) -> MediaSubscriber:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._feed)
        self._tg.start_soon(self._decode)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        # Both child tasks keep their own errors (surfaced by __anext__), so the group has nothing to
        # report; exiting it without the caller's exception lets that exception propagate unwrapped
        # instead of inside an ExceptionGroup.
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
        return None

    async def aclose(self) -> None:
        self._stop.set()
        self._frames_recv.close()
        self._chunks_recv.close()

    def __aiter__(self) -> MediaSubscriber:
        return self

    async def __anext__(self) -> av.VideoFrame | av.AudioFrame:
        """The next decoded frame: video, and audio too when opened with ``audio=True``."""
        try:
            return await self._frames_recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._feed_error is not None:
                raise self._feed_error from None
            if self._error is not None:
                raise MediaError(f"decoding failed: {self._error}") from self._error
            raise StopAsyncIteration from None

    async def _feed(self) -> None:
        async with self._chunks_send:
            try:
                async for segment in self._subscriber:
                    self.segments_received += 1
                    async for chunk in segment:
                        await self._chunks_send.send(chunk)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the decoder stopped; nothing left to feed
            except Exception as exc:
                # The subscriber's own error (e.g. the server went away) is re-raised as is by the
                # iterator once the frames decoded so far are consumed, not wrapped in a task-group error.
                self._feed_error = exc

    async def _decode(self) -> None:
        async with self._frames_send:
            try:
                await anyio.to_thread.run_sync(self._decode_blocking, abandon_on_cancel=True)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            except Exception as exc:  # surfaced to the iterator as MediaError
                self._error = exc

    def _decode_blocking(self) -> None:
        import av

        pipe = _ChunkPipe(self._chunks_recv)
        try:
            # A small probe keeps the first frame close to the first bytes; the format is known.
            container = av.open(
                pipe, "r", format="mpegts", options={"probesize": "32768", "analyzeduration": "0"}
            )
        except (av.error.EOFError, av.error.InvalidDataError) as exc:
            if pipe.bytes_read == 0:
                return  # the stream ended before any media arrived
            raise MediaError(f"input is not MPEG-TS: {exc}") from exc
        with container:
            if not container.streams.video:
                if pipe.bytes_read == 0:
                    return
                raise MediaError("input has no MPEG-TS video stream")
            self.has_audio = bool(container.streams.audio)
            for frame in _decode_tolerant(container, audio=self._audio):
                if self._stop.is_set():
                    return
                self.frames_decoded += 1
                anyio.from_thread.run(self._frames_send.send, frame)


def _decode_tolerant(container: Any, *, audio: bool) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """Decode video (and audio), skipping corrupt packets: a jump to the live edge leaves a partial
    GOP behind."""
    import av

    streams = [container.streams.video[0]]
    if audio and container.streams.audio:
        streams.append(container.streams.audio[0])
    for packet in container.demux(*streams):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue
