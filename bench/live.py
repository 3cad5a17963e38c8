"""Live passthrough benchmark (DESIGN.md §7): 512x512 at 30 fps through the devnet ``noop`` LV2V pipeline.

    .venv/bin/python bench/live.py [--seconds 60] [--fps 30] [--size 512]

Each frame carries its index as a 4x4 grid of black/white blocks (16 bits), coarse enough to survive H.264, so
the output side can tell which input frame it is looking at: frames in vs frames out (dropped = in - out),
glass-to-glass latency (publish call -> decoded output frame) p50/p95, and CPU. The devnet runs in its own
process (``python -m livepeer.devnet``), so the client's CPU is measured alone; the devnet's is read from
/proc. Baseline in the same run: the same frames, paced the same way, through our encoder and streaming decoder
over an in-memory channel (the client media floor), so the network + orchestrator + runner share of the latency is the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import numpy as np

GRID = 4


def stamp(index: int, size: int) -> np.ndarray:
    """An RGB frame whose 4x4 block grid spells ``index`` in binary (white = 1)."""
    frame = np.full((size, size, 3), 64, np.uint8)
    block = size // GRID
    for bit in range(GRID * GRID):
        if index >> bit & 1:
            r, c = divmod(bit, GRID)
            frame[r * block : (r + 1) * block, c * block : (c + 1) * block] = 255
    return frame


def read_stamp(rgb: np.ndarray) -> int:
    size = rgb.shape[0]
    block = size // GRID
    index = 0
    for bit in range(GRID * GRID):
        r, c = divmod(bit, GRID)
        centre = rgb[r * block + block // 4 : (r + 1) * block - block // 4,
                     c * block + block // 4 : (c + 1) * block - block // 4]  # fmt: skip
        if centre.mean() > 160:
            index |= 1 << bit
    return index


def proc_cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks


@contextmanager
def devnet_process() -> Iterator[tuple[dict[str, object], int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "livepeer.devnet", "--orchestrators", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("devnet did not start")
        yield json.loads(line), proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def through_devnet(token: str, seconds: float, fps: int, size: int) -> dict[str, float]:
    from livepeer.client import Gateway
    from livepeer.client._live import open_session

    total = int(seconds * fps)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    received: set[int] = set()
    async with (
        Gateway(token=token) as gw,
        open_session(gw, "live-video-to-video", model="noop") as s,
    ):
        frames = s.subscribe(max_buffered_frames=64)

        async def produce() -> None:
            async with s.publish(fps=fps, gop_seconds=1.0) as pub:
                start = time.perf_counter()
                for i in range(total):
                    await anyio.sleep(max(0.0, start + i / fps - time.perf_counter()))
                    sent[i] = time.perf_counter()
                    await pub.write_frame(stamp(i, size))

        cpu0, wall0 = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            with anyio.move_on_after(seconds + 15):
                async for frame in frames:
                    idx = read_stamp(frame.to_ndarray(format="rgb24"))
                    if idx in sent and idx not in received:
                        received.add(idx)
                        latencies.append((time.perf_counter() - sent[idx]) * 1000)
                    if len(received) >= total or idx == total - 1:
                        break
            tg.cancel_scope.cancel()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "frames_in": total,
        "frames_out": len(received),
        "dropped": total - len(received),
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "client_cpu_pct": 100 * cpu / wall,
        "wall_s": wall,
    }


async def local_pipeline(seconds: float, fps: int, size: int) -> dict[str, float]:
    """The same client media pipeline with an in-memory channel instead of network + orchestrator.

    Frames are paced at ``fps``, encoded by ``MediaPublisher`` (one GOP per segment, bytes streamed per frame)
    and decoded by ``MediaSubscriber`` while segments are still arriving, exactly as in a live session.
    """
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from livepeer.trickle.media import MediaPublisher, MediaSubscriber, VideoConfig

    seg_send, seg_recv = anyio.create_memory_object_stream[MemoryObjectReceiveStream[bytes]](64)

    class Segment:
        def __init__(self) -> None:
            self.send: MemoryObjectSendStream[bytes]
            self.send, self.recv = anyio.create_memory_object_stream[bytes](1024)

        async def __aenter__(self) -> Segment:
            await seg_send.send(self.recv)
            return self

        async def __aexit__(self, *exc: object) -> None:
            self.send.close()

        async def write(self, data: bytes) -> None:
            await self.send.send(data)

    class Channel:
        def segment(self) -> Segment:
            return Segment()

        async def __aiter__(self):  # type: ignore[no-untyped-def]
            async for segment in seg_recv:
                yield segment

    total = int(seconds * fps)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    channel = Channel()

    async def produce() -> None:
        async with MediaPublisher(channel, VideoConfig(fps=fps, gop_seconds=1.0)) as pub:
            start = time.perf_counter()
            for i in range(total):
                await anyio.sleep(max(0.0, start + i / fps - time.perf_counter()))
                sent[i] = time.perf_counter()
                await pub.write_frame(stamp(i, size))
        seg_send.close()

    async with anyio.create_task_group() as tg, MediaSubscriber(channel) as frames:
        tg.start_soon(produce)
        async for frame in frames:
            idx = read_stamp(frame.to_ndarray(format="rgb24"))
            if idx in sent:
                latencies.append((time.perf_counter() - sent.pop(idx)) * 1000)
    return {"frames": len(latencies), "p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    with devnet_process() as (info, pid):
        cpu_before = proc_cpu_seconds(pid)
        live = anyio.run(through_devnet, str(info["token"]), args.seconds, args.fps, args.size)
        devnet_cpu = 100 * (proc_cpu_seconds(pid) - cpu_before) / live["wall_s"]
    floor = anyio.run(local_pipeline, args.seconds, args.fps, args.size)
    print(
        f"live passthrough {args.size}x{args.size} @ {args.fps} fps for {args.seconds:g} s (devnet noop)"
    )
    print(f"  frames in {live['frames_in']}, out {live['frames_out']}, dropped {live['dropped']}")
    print(f"  glass-to-glass p50 {live['p50_ms']:.1f} ms, p95 {live['p95_ms']:.1f} ms")
    print(f"  CPU: client {live['client_cpu_pct']:.0f}% of a core, devnet {devnet_cpu:.0f}%")
    print(f"  baseline: same encoder/decoder, in-memory channel, {floor['frames']} frames: "
          f"p50 {floor['p50_ms']:.1f} ms, p95 {floor['p95_ms']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
