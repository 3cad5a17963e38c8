"""Shared benchmark machinery: interleaved A/B rounds, medians with min-max, load conditions, JSON results.

Every comparison in ``bench/`` runs its arms in alternating rounds (A B, then B A, ...), so slow drift of a
shared machine (other processes, thermal, caches) lands on both arms alike. A round measures each arm once
(``per_round`` calls) and records the round's median; the report gives the median over rounds with the min and
max over rounds, and the ratio as the median of the per-round ratios with their min-max. Nothing uses
best-of or minimum: other work on the machine adds time to both arms and we report what a user would see.

Each bench writes ``bench/results/<name>.json`` (``Results.save``); ``bench/render.py`` turns those files into
``bench/RESULTS.md``, so the published numbers are exactly what the benches printed.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Stat:
    """Median over rounds with the min-max over rounds; ``n`` rounds of ``per_round`` samples each."""

    median: float
    lo: float
    hi: float
    n: int
    unit: str = ""

    @classmethod
    def of(cls, values: list[float], unit: str = "") -> Stat:
        return cls(statistics.median(values), min(values), max(values), len(values), unit)

    def fmt(self, digits: int = 2) -> str:
        f = f"{{:,.{digits}f}}"
        return f"{f.format(self.median)} [{f.format(self.lo)}-{f.format(self.hi)}]"


def load_conditions() -> dict[str, Any]:
    """What else the machine was doing: load average, cores, busy processes (a snapshot)."""
    try:
        la = [float(x) for x in open("/proc/loadavg").read().split()[:3]]  # noqa: SIM115
    except OSError:
        la = list(os.getloadavg())
    busy = 0
    try:
        out = subprocess.run(
            ["ps", "-eo", "pcpu="], capture_output=True, text=True, timeout=5, check=False
        ).stdout
        busy = sum(1 for x in out.split() if float(x) >= 10.0)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        pass
    return {
        "utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "loadavg_1_5_15": la,
        "cores": os.cpu_count(),
        "procs_over_10pct_cpu": busy,
    }


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):  # noqa: SIM115
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "cpu": cpu, "cores": os.cpu_count()}


def interleave(
    arms: dict[str, Callable[[], float]], rounds: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Run each arm once per round, alternating the order every round; return each arm's per-round values.

    An arm returns its own per-round measurement (a median over its calls, a rate, ...).
    """
    names = list(arms)
    for _ in range(warmup):
        for name in names:
            arms[name]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            out[name].append(arms[name]())
    return out


def median_call_ms(fn: Callable[[], object], calls: int) -> float:
    """Median wall time of ``calls`` calls of ``fn`` (ms): one round of one arm."""
    ts = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000


def ratios(a: list[float], b: list[float]) -> Stat:
    """Per-round ``a / b`` (the rounds were interleaved, so round i of both arms ran side by side)."""
    return Stat.of([x / y for x, y in zip(a, b, strict=True)], "x")


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


@dataclass
class Results:
    """One bench's machine-readable output; rows are rendered in order by ``bench/render.py``."""

    name: str
    title: str
    notes: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    load: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.load.append({"at": "start", **load_conditions()})

    def row(
        self,
        what: str,
        measured: Stat | str,
        *,
        baseline: Stat | str | None = None,
        baseline_what: str = "",
        ratio: Stat | float | None = None,
        budget: str = "",
        ok: bool | None = None,
    ) -> None:
        def enc(v: Stat | str | float | None) -> Any:
            return asdict(v) if isinstance(v, Stat) else v

        entry = {
            "what": what,
            "measured": enc(measured),
            "baseline": enc(baseline),
            "baseline_what": baseline_what,
            "ratio": enc(ratio),
            "budget": budget,
            "ok": ok,
        }
        self.rows.append(entry)
        show = measured.fmt() if isinstance(measured, Stat) else measured
        r = ratio.fmt() if isinstance(ratio, Stat) else ratio
        flag = "" if ok is None else ("  OK" if ok else "  MISSED")
        print(f"{what}: {show}  ratio {r}  {budget}{flag}", flush=True)

    def table(self, title: str, header: list[str], body: list[list[str]], note: str = "") -> None:
        self.tables.append({"title": title, "header": header, "rows": body, "note": note})
        print(f"-- {title}\n" + "\n".join(" | ".join(r) for r in [header, *body]), flush=True)

    def save(self) -> Path:
        self.load.append({"at": "end", **load_conditions()})
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        doc = {
            "name": self.name,
            "title": self.title,
            "machine": machine(),
            "argv": sys.argv[1:],
            "wall_s": round(time.perf_counter() - self.started, 1),
            "load": self.load,
            "notes": self.notes,
            "rows": self.rows,
            "tables": self.tables,
        }
        path.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {path}", flush=True)
        return path


@contextmanager
def devnet_process(*args: str) -> Iterator[tuple[dict[str, Any], int]]:
    """Start ``python -m livepeer.devnet ARGS`` (its own process and GIL); yield its JSON line and pid."""
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
        yield json.loads(line), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
