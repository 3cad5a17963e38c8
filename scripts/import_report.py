#!/usr/bin/env python3
"""The import cost of the SDK's cold paths, as a CI report (issue 17): ``python scripts/import_report.py``.

Runs ``python -X importtime`` in fresh interpreters for ``import livepeer.client`` (untyped) and for
``gw.capabilities`` (the typed wrappers), and prints the module count, the total self time and the heaviest
imports. It reports, it does not judge: import time on a shared CI machine is too noisy for a threshold
(the budgets live in bench/, measured with interleaved rounds). It also prints which heavy stacks were
imported, since those are what a regression looks like (h2, grpc, pydantic, httpcore's pool, trio).
"""

from __future__ import annotations

import subprocess
import sys

PATHS = {
    "untyped": "import livepeer.client as c; c.Gateway(orch_url='https://127.0.0.1:1')",
    "typed": (
        "import livepeer.client as c; gw = c.Gateway(orch_url='https://127.0.0.1:1'); "
        "gw.capabilities.text_reversal"
    ),
}
HEAVY = (
    "h2",
    "grpc",
    "pydantic",
    "httpcore._sync.connection_pool",
    "trio",
    "google.protobuf",
    "av",
)
TOP = 12


def measure(code: str) -> tuple[list[tuple[int, int, str]], set[str]]:
    """(self µs, cumulative µs, module) per imported module, from ``-X importtime``'s stderr."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    rows: list[tuple[int, int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative, name = (
            part.strip() for part in line[len("import time:") :].split("|")
        )
        rows.append((int(self_us), int(cumulative), name))
    return rows, {name for _, _, name in rows}


def main() -> int:
    for label, code in PATHS.items():
        rows, names = measure(code)
        total = sum(r[0] for r in rows)
        heavy = [h for h in HEAVY if h in names]
        print(
            f"{label}: {len(rows)} modules, {total / 1000:.0f} ms self time; heavy stacks: {', '.join(heavy) or 'none'}"
        )
        for self_us, cumulative, name in sorted(rows, reverse=True)[:TOP]:
            print(
                f"  {self_us / 1000:7.1f} ms self  {cumulative / 1000:7.1f} ms cumulative  {name}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
