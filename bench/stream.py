"""Streams: SSE decoding throughput on realistic bytes (ours vs httpx-sse, same chunks) and time to first event
through the devnet (``gw.stream`` vs raw httpx + httpx-sse, both warm and pooled), interleaved rounds.

    .venv/bin/python bench/stream.py [--rounds 9]     # writes bench/results/stream.json

The corpus is what an LLM token stream looks like on the wire: ``id``, ``event`` and ~120 B of JSON ``data`` per
event, CRLF line ends, a UTF-8 BOM, a ``retry``, every tenth event's data over two lines, a keep-alive comment
every fiftieth. Both decoders get the same bytes in the same chunks: ours through ``SSEDecoder.feed``, httpx-sse
through ``EventSource.iter_sse`` over an ``httpx.Response`` streaming those chunks (its real path: httpx text
decoding, its line splitter, its decoder). The rate is events per second of CPU time of this process (the
machine is shared; wall time would mostly measure the scheduler); wall-time rates are recorded alongside.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import time

import httpx
from _harness import Results, Stat, devnet_process, interleave, median_call_ms, ratios

from livepeer.client import Gateway, SSEDecoder

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "livepeer",
    "token",
    "é",
    "日本",
]


def corpus(n: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    out = [b"\xef\xbb\xbf", b"retry: 3000\r\n\r\n"]
    for i in range(n):
        tok = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 5)))
        data = (
            f'{{"index": {i}, "token": "{tok}", "logprob": {-rnd.random():.4f}, '
            f'"finish_reason": null, "model": "llama-3-8b-instruct"}}'
        ).encode()
        lines = [b"id: %d" % i, b"event: token"]
        if i % 10 == 9:
            lines += [b"data: " + data[: len(data) // 2], b"data: " + data[len(data) // 2 :]]
        else:
            lines.append(b"data: " + data)
        if i % 50 == 49:
            lines.insert(0, b": keep-alive")
        out.append(b"\r\n".join(lines) + b"\r\n\r\n")
    return b"".join(out)


def decode_throughput(res: Results, rounds: int, n_events: int) -> None:
    payload = corpus(n_events)
    data_sizes = [len(x) for x in payload.split(b"\r\n") if x.startswith(b"data: ")]
    res.notes.append(
        f"SSE corpus: {n_events:,} events, {len(payload) / n_events:.0f} B per event on the wire, "
        f"data lines {min(data_sizes) - 6}-{max(data_sizes) - 6} B, CRLF, BOM, multi-line data every 10th, "
        "comment every 50th."
    )
    try:
        from httpx_sse import EventSource
    except ImportError:
        EventSource = None

    for size, label in ((65536, "64 KiB"), (1024, "1 KiB")):
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
        wall: dict[str, list[float]] = {"ours": [], "httpx-sse": []}

        def ours(chunks: list[bytes] = chunks, wall: dict[str, list[float]] = wall) -> float:
            c0, w0 = time.process_time(), time.perf_counter()
            d = SSEDecoder()
            n = 0
            for c in chunks:
                n += len(d.feed(c))
            assert n == n_events, n
            wall["ours"].append(n / (time.perf_counter() - w0))
            return n / (time.process_time() - c0)

        def theirs(chunks: list[bytes] = chunks, wall: dict[str, list[float]] = wall) -> float:
            assert EventSource is not None
            resp = httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
            )
            c0, w0 = time.process_time(), time.perf_counter()
            n = sum(1 for ev in EventSource(resp).iter_sse() if ev.data)
            assert n == n_events, n
            wall["httpx-sse"].append(n / (time.perf_counter() - w0))
            return n / (time.process_time() - c0)

        arms = {"ours": ours} if EventSource is None else {"ours": ours, "httpx-sse": theirs}
        got = interleave(arms, rounds)
        o = Stat.of(got["ours"], "events/s")
        ok_rate = o.median >= 250_000
        if EventSource is None:
            res.row(
                f"SSE decode, ours, {label} chunks (events/s CPU)", o, budget=">= 250k", ok=ok_rate
            )
            continue
        t = Stat.of(got["httpx-sse"], "events/s")
        r = ratios(got["ours"], got["httpx-sse"])
        res.row(
            f"SSE decode, {label} chunks (events/s of CPU time)",
            o,
            baseline=t,
            baseline_what="httpx-sse 0.4.3 EventSource.iter_sse, same chunks",
            ratio=r,
            budget=">= 250k events/s and >= 1.5x httpx-sse",
            ok=ok_rate and r.median >= 1.5,
        )
        w = Stat.of(wall["ours"][1:], "events/s")
        tw = Stat.of(wall["httpx-sse"][1:], "events/s")
        res.row(
            f"  same, wall-clock events/s ({label})",
            w,
            baseline=tw,
            baseline_what="httpx-sse, wall clock",
            ratio=ratios(wall["ours"][1:], wall["httpx-sse"][1:]),
        )


def time_to_first_event(res: Results, rounds: int, per_round: int) -> None:
    from httpx_sse import connect_sse

    with devnet_process("--orchestrators", "1") as (info, _pid):
        orch = info["orchestrators"][0]
        body = {"text": "alpha beta gamma"}
        job = {
            "id": "bench",
            "request": "{}",
            "parameters": "{}",
            "capability": "token-stream",
            "sender": "0x" + "00" * 20,
            "sig": "",
            "timeout_seconds": 60,
        }
        headers = {"Livepeer": base64.b64encode(json.dumps(job).encode()).decode()}
        with httpx.Client(verify=False) as client, Gateway(orch_url=orch) as gw:

            def raw_first() -> None:
                with connect_sse(
                    client, "POST", orch + "/process/request/", json=body, headers=dict(headers)
                ) as source:
                    next(iter(source.iter_sse()))

            def ours_first() -> None:
                with gw.stream("token-stream", input=body) as s:
                    next(iter(s))

            got = interleave(
                {
                    "ours": lambda: median_call_ms(ours_first, per_round),
                    "raw": lambda: median_call_ms(raw_first, per_round),
                },
                rounds,
            )
        r = ratios(got["ours"], got["raw"])
        res.row(
            f"time to first event, warm (ms; median of {per_round} per round)",
            Stat.of(got["ours"], "ms"),
            baseline=Stat.of(got["raw"], "ms"),
            baseline_what="raw httpx + httpx-sse connect_sse, pooled client",
            ratio=r,
            budget="<= 1.2x raw",
            ok=r.median <= 1.2,
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--ttfe-per-round", type=int, default=10)
    args = ap.parse_args()
    res = Results(
        "stream", "livepeer.client: SSE decoding and time to first event (`bench/stream.py`)"
    )
    res.notes.append(
        f"Interleaved rounds ({args.rounds}; order alternates each round) after one warm-up round; "
        "each cell is the median over rounds [min-max over rounds]; the ratio is the median of per-round "
        "ratios [min-max]."
    )
    decode_throughput(res, args.rounds, args.events)
    time_to_first_event(res, args.rounds, args.ttfe_per_round)
    res.save()


if __name__ == "__main__":
    main()
