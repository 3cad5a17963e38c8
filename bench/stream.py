"""Benchmarks for streams: SSE decoding throughput (pure parser, ours vs httpx-sse's) and
time-to-first-event through the devnet (``gw.stream`` vs raw httpx + httpx-sse, warm).

    python bench/stream.py
"""

from __future__ import annotations

import base64
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from livepeer.client import Gateway, SSEDecoder


@contextmanager
def devnet_process(*args: str) -> Iterator[dict[str, Any]]:
    """Start ``python -m livepeer.devnet ARGS`` (its own process and GIL); yield its JSON line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "livepeer.devnet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("devnet did not start")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


N_EVENTS = 200_000
N_TTFE = 50
rows: list[tuple[str, str, str]] = []


def row(what: str, value: str, budget: str = "") -> None:
    rows.append((what, value, budget))
    print(f"{what:55} {value:22} {budget}", flush=True)


def parser_throughput() -> None:
    payload = b"".join(b'data: {"index": %d, "token": "word"}\n\n' % i for i in range(N_EVENTS))
    chunks = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        d = SSEDecoder()
        n = sum(len(d.feed(c)) for c in chunks)
        best = max(best, n / (time.perf_counter() - t))
    row("SSE decode, ours (events/s, best of 5)", f"{best:,.0f}", ">= 200k events/s")
    try:
        from httpx_sse._decoders import SSEDecoder as PeerDecoder
    except ImportError:
        return
    lines = payload.decode().split("\n")
    peer_best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        pd = PeerDecoder()
        n = 0
        for line in lines:  # httpx-sse decodes pre-split lines; splitting is not counted
            if pd.decode(line) is not None:
                n += 1
        peer_best = max(peer_best, n / (time.perf_counter() - t))
    row(
        "SSE decode, httpx-sse 0.4 (events/s, lines pre-split)",
        f"{peer_best:,.0f}",
        f"ours {best / peer_best:.2f}x",
    )


def time_to_first_event() -> None:
    from httpx_sse import connect_sse

    with devnet_process("--orchestrators", "1") as info:
        orch = info["orchestrators"][0]
        body = {"text": "alpha beta gamma"}
        job = {
            "id": "bench",
            "request": "{}",
            "parameters": "{}",
            "capability": "token-stream",
            "sender": "0x" + "00" * 20,
            "sig": "0x",
            "timeout_seconds": 60,
        }
        headers = {"Livepeer": base64.b64encode(json.dumps(job).encode()).decode()}

        def raw_first(client: httpx.Client) -> None:
            with connect_sse(
                client, "POST", orch + "/process/request/", json=body, headers=headers
            ) as source:
                next(iter(source.iter_sse()))

        with httpx.Client(verify=False) as client:
            raw_first(client)
            raw = []
            for _ in range(N_TTFE):
                t = time.perf_counter()
                raw_first(client)
                raw.append(time.perf_counter() - t)

        with Gateway(orch_url=orch) as gw:

            def ours_first() -> None:
                with gw.stream("token-stream", input=body) as s:
                    next(iter(s))

            ours_first()
            ours = []
            for _ in range(N_TTFE):
                t = time.perf_counter()
                ours_first()
                ours.append(time.perf_counter() - t)
        r, o = median_ms(raw), median_ms(ours)
        row("time to first event, raw httpx + httpx-sse (ms)", f"{r:.2f}")
        row("time to first event, gw.stream (ms)", f"{o:.2f}", f"<= 1.2x raw: {o / r:.2f}x")
        row(
            "  (spread: ours p90 / raw p90, ms)",
            f"{statistics.quantiles(ours, n=10)[-1] * 1000:.1f} / {statistics.quantiles(raw, n=10)[-1] * 1000:.1f}",
        )


def main() -> None:
    parser_throughput()
    time_to_first_event()
    print("\n| what | measured | budget / ratio |\n|---|---|---|")
    for what, value, budget in rows:
        print(f"| {what} | {value} | {budget} |")


if __name__ == "__main__":
    main()
