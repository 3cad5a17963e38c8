"""``livepeer live``: publish a video file or a test pattern, save what comes back, show live stats."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from ._gateway import Gateway

__all__ = ["run_live"]

# After the last published frame, output keeps arriving for the pipeline's latency; stop once it has been
# quiet this long (the devnet's grayscale pipeline answers within ~0.3 s).
DRAIN_QUIET = 3.0
SIZE = 256


@dataclass
class _Stats:
    started: float
    sent: int = 0
    received: int = 0
    width: int = 0
    height: int = 0

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        fps = self.received / elapsed if elapsed > 0 else 0.0
        size = f" {self.width}x{self.height}" if self.width else ""
        return (
            f"{elapsed:5.1f}s  sent {self.sent} frames  received {self.received}{size}  "
            f"{fps:4.1f} fps out"
        )


def _params(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item!r} is not KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _pattern(count: int) -> Iterator[Any]:
    import numpy as np

    for i in range(count):
        x = (np.arange(SIZE) + 4 * i) % SIZE
        frame = np.zeros((SIZE, SIZE, 3), np.uint8)
        frame[:, :, 0] = (x < SIZE // 3) * 255
        frame[:, :, 1] = ((x >= SIZE // 3) & (x < 2 * SIZE // 3)) * 255
        frame[:, :, 2] = (x >= 2 * SIZE // 3) * 255
        yield frame


def _video(path: Path, count: int) -> Iterator[Any]:
    import av

    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError) as exc:
        raise ValidationError(f"--video {path}: cannot open it as a video ({exc})") from None
    with container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= count:
                break
            yield frame.to_ndarray(format="rgb24")


def run_live(gw: Gateway, args: argparse.Namespace) -> None:
    """Blocking: one live session from start to the saved output file."""
    try:
        import anyio
        import av  # noqa: F401  (the `live` extra)
        import numpy  # noqa: F401
    except ImportError:
        raise ConfigError(
            "livepeer live needs the live extra: pip install 'livepeer-client[live]'"
        ) from None
    if args.seconds <= 0 or args.fps <= 0:
        raise ConfigError("--seconds and --fps must be above 0")
    if args.video is not None and not args.video.is_file():
        raise ConfigError(f"--video {args.video}: no such file")
    params = _params(args.param)
    anyio.run(_session, gw, args, params)


async def _session(gw: Gateway, args: argparse.Namespace, params: dict[str, Any]) -> None:
    import anyio
    import av

    count = int(args.seconds * args.fps)
    frames = _video(args.video, count) if args.video is not None else _pattern(count)
    tty = sys.stderr.isatty()
    stats = _Stats(time.monotonic())
    print(f"livepeer live: starting {args.capability} ...", file=sys.stderr)
    async with gw.live(args.capability, model=args.model, params=params or None) as session:
        print(f"livepeer live: session on {session.orchestrator}", file=sys.stderr)
        stats.started = time.monotonic()
        output = av.open(str(args.output), "w")
        stream: Any = None
        published = anyio.Event()
        last_frame = [time.monotonic()]

        async def publish() -> None:
            try:
                async with session.publish(fps=args.fps) as pub:
                    for frame in frames:
                        await pub.write_frame(frame)
                        stats.sent += 1
                        await anyio.sleep(1 / args.fps)
            finally:
                published.set()

        async def show() -> None:
            while tty:
                sys.stderr.write("\r\x1b[2K" + stats.line())
                sys.stderr.flush()
                await anyio.sleep(0.25)

        async def drain(tg: anyio.abc.TaskGroup) -> None:
            await published.wait()
            last_frame[0] = max(last_frame[0], time.monotonic())
            while True:
                left = DRAIN_QUIET - (time.monotonic() - last_frame[0])
                if left <= 0:
                    break
                await anyio.sleep(left)
            tg.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(publish)
                tg.start_soon(show)
                tg.start_soon(drain, tg)
                async for frame in session.subscribe():
                    if stream is None:
                        stream = output.add_stream("mpeg4", rate=args.fps)
                        stream.width, stream.height = frame.width, frame.height
                        stream.pix_fmt = "yuv420p"
                        stats.width, stats.height = frame.width, frame.height
                    # A fresh frame with our own clock: the received one carries the stream's pts.
                    out = av.VideoFrame.from_ndarray(
                        frame.to_ndarray(format="rgb24"), format="rgb24"
                    )
                    out = out.reformat(format="yuv420p")
                    out.pts = stats.received
                    out.time_base = Fraction(1, args.fps)
                    for packet in stream.encode(out):
                        output.mux(packet)
                    stats.received += 1
                    last_frame[0] = time.monotonic()
        finally:
            if stream is not None:
                for packet in stream.encode():
                    output.mux(packet)
            output.close()
            if tty:
                sys.stderr.write("\r\x1b[2K")
    print(f"livepeer live: {stats.line()} -> {args.output}", file=sys.stderr)
    print(
        json.dumps(
            {
                "output": str(args.output),
                "frames_sent": stats.sent,
                "frames_received": stats.received,
                "width": stats.width,
                "height": stats.height,
            }
        )
    )
