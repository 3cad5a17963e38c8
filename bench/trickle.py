"""Trickle loopback benchmark: livepeer.trickle publish -> TrickleServer -> subscribe, side by side with a raw
httpx streaming POST/GET through a trivial relay, in the same run (DESIGN.md §7 budget: throughput >= 0.8x raw,
added per-segment latency p50 <= 5 ms).

    .venv/bin/python bench/trickle.py [--segments-64k 540] [--segments-1m 72] [--rounds 9]

Each segment is written, then read to its last byte by a subscriber, before the next one starts; per-segment
latency is write start -> last byte read, throughput is total bytes / total time of that loop. Every round
starts with one untimed segment in both arms, so connection setup (two connections for raw, four for trickle:
the publisher and the subscriber each preconnect the next segment) is not charged to the timed segments.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import anyio
import httpx
from _harness import Results, Stat, ratios

from livepeer.runner.hosting import hosted
from livepeer.trickle import TricklePublisher, TrickleServer, TrickleSubscriber

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Relay:
    """Trivial relay: ``POST /{n}`` streams into a channel that one ``GET /{n}`` drains (no ring, no seqs)."""

    def __init__(self) -> None:
        self._streams: dict[str, tuple[Any, Any]] = {}

    def _pair(self, key: str) -> tuple[Any, Any]:
        if key not in self._streams:
            self._streams[key] = anyio.create_memory_object_stream[bytes | None](64)
        return self._streams[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        key = scope["path"]
        writer, reader = self._pair(key)
        if scope["method"] == "POST":
            while True:
                message = await receive()
                body = message.get("body", b"")
                if body:
                    await writer.send(body)
                if not message.get("more_body", False):
                    break
            await writer.send(None)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (chunk := await reader.receive()) is not None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        del self._streams[key]


def _chunks(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def bench_raw(segment: bytes, count: int) -> tuple[float, list[float], float]:
    """(bytes/s, per-segment latencies in s, process CPU s per segment) over ``count`` timed segments."""
    relay = Relay()
    latencies: list[float] = []
    async with hosted(relay) as srv, httpx.AsyncClient(timeout=30) as client:

        async def one(n: int) -> float:
            async def body() -> AsyncIterator[bytes]:
                for chunk in _chunks(segment):
                    yield chunk

            received = 0
            t0 = time.perf_counter()
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(client.post, f"{srv.url}/{n}", content=body()))
                async with client.stream("GET", f"{srv.url}/{n}") as response:
                    async for chunk in response.aiter_raw():
                        received += len(chunk)
            assert received == len(segment)
            return time.perf_counter() - t0

        # Untimed, like the trickle arm's: the timed segments run on open connections in both arms.
        await one(-1)
        cpu = time.process_time()
        start = time.perf_counter()
        for n in range(count):
            latencies.append(await one(n))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    return len(segment) * count / elapsed, latencies, cpu / count


async def bench_trickle(segment: bytes, count: int) -> tuple[float, list[float], float]:
    """(bytes/s, per-segment latencies in s, process CPU s per segment) over ``count`` timed segments."""
    server = TrickleServer()
    server.create_channel("bench")
    latencies: list[float] = []
    async with hosted(server) as srv:
        url = f"{srv.url}/bench"
        async with (
            TricklePublisher(url, delete_on_close=False) as pub,
            TrickleSubscriber(url, start_seq=0) as sub,
        ):

            async def one() -> float:
                t0 = time.perf_counter()
                async with anyio.create_task_group() as tg:

                    async def publish() -> None:
                        async with pub.segment() as seg:
                            for chunk in _chunks(segment):
                                await seg.write(chunk)

                    tg.start_soon(publish)
                    got = await sub.next()
                    assert got is not None
                    received = 0
                    async for chunk in got:
                        received += len(chunk)
                assert received == len(segment)
                return time.perf_counter() - t0

            # Untimed: the first segment opens four connections (two preconnected) where the raw arm
            # opens two; measuring from the second compares the steady state of both.
            await one()
            cpu = time.process_time()
            start = time.perf_counter()
            for _ in range(count):
                latencies.append(await one())
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
    return len(segment) * count / elapsed, latencies, cpu / count


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main(args: argparse.Namespace) -> None:
    res = Results("trickle", "Trickle (`bench/trickle.py`)")
    res.notes.append(
        "Loopback, one process, HTTP/1.1 under hypercorn. Each segment is written and read to its last byte "
        "before the next starts. raw = httpx streaming POST + streaming GET through a trivial ASGI relay; "
        "trickle = `TricklePublisher` -> `TrickleServer` -> `TrickleSubscriber`. "
        f"{args.rounds} interleaved rounds per segment size; each round starts with one untimed segment "
        "(connection setup) in both arms; throughput per round = bytes / loop time; "
        "latency per round = p50 of write start -> last byte read over the round's segments; "
        "CPU = process CPU time per segment (client, server and subscriber share the process and its one "
        "event loop, so on a loaded machine wall times are CPU times stretched by the share the process got)."
    )
    for label, size, count in (
        ("64 KB", 64 * 1024, args.segments_64k),
        ("1 MB", 1024 * 1024, args.segments_1m),
    ):
        segment = bytes(range(256)) * (size // 256)
        per = max(3, count // args.rounds)
        lat: dict[str, list[float]] = {"raw": [], "trickle": []}
        tput: dict[str, list[float]] = {"raw": [], "trickle": []}
        cpu: dict[str, list[float]] = {"raw": [], "trickle": []}
        await bench_raw(segment, 3)  # warm-up (imports, first connections)
        await bench_trickle(segment, 3)
        for r in range(args.rounds):
            for name in ("raw", "trickle") if r % 2 == 0 else ("trickle", "raw"):
                fn = bench_raw if name == "raw" else bench_trickle
                tp, ls, cs = await fn(segment, per)
                tput[name].append(tp / 1e6)
                lat[name].append(_pct(ls, 0.5))
                cpu[name].append(cs * 1000)
        tr = ratios(tput["trickle"], tput["raw"])
        res.row(
            f"{label} segments, throughput (MB/s; {per} segments per round)",
            Stat.of(tput["trickle"], "MB/s"),
            baseline=Stat.of(tput["raw"], "MB/s"),
            baseline_what="raw httpx streaming relay",
            ratio=tr,
            budget=">= 0.8x raw",
            ok=tr.median >= 0.8,
        )
        added = [a - b for a, b in zip(lat["trickle"], lat["raw"], strict=True)]
        res.row(
            f"{label} segments, latency p50 (ms)",
            Stat.of(lat["trickle"], "ms"),
            baseline=Stat.of(lat["raw"], "ms"),
            baseline_what="raw relay p50",
            ratio=ratios(lat["trickle"], lat["raw"]),
            budget=f"added p50 <= 5 ms: {Stat.of(added, 'ms').fmt()} ms",
            ok=Stat.of(added, "ms").median <= 5,
        )
        res.row(
            f"{label} segments, process CPU per segment (ms)",
            Stat.of(cpu["trickle"], "ms"),
            baseline=Stat.of(cpu["raw"], "ms"),
            baseline_what="raw relay",
            ratio=ratios(cpu["trickle"], cpu["raw"]),
        )
    res.save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments-64k", type=int, default=540)
    parser.add_argument("--segments-1m", type=int, default=72)
    parser.add_argument("--rounds", type=int, default=9)
    anyio.run(main, parser.parse_args())
