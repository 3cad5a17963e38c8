#!/usr/bin/env python3
"""Fail when a test run skipped a test for a reason that is not allow-listed.

``python scripts/check_skips.py REPORT.xml [...]`` reads pytest ``--junitxml`` reports; every skipped test's
reason must match a pattern in ``tests/skip-allowlist.txt`` (one regular expression per line, ``#`` comments,
each entry with the reason it is acceptable). A skip nobody decided on hides a test that no longer runs.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ALLOWLIST = Path(__file__).resolve().parent.parent / "tests" / "skip-allowlist.txt"


def allowed_patterns(path: Path = ALLOWLIST) -> list[re.Pattern[str]]:
    patterns = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append(re.compile(line))
    return patterns


def skips(report: Path) -> list[tuple[str, str]]:
    found = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for skipped in case.findall("skipped"):
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            reason = skipped.get("message") or (skipped.text or "").strip()
            if skipped.get("type") == "pytest.xfail":
                continue
            found.append((name, reason))
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    patterns = allowed_patterns()
    bad: list[tuple[str, str]] = []
    total = 0
    for arg in argv:
        for name, reason in skips(Path(arg)):
            total += 1
            if not any(p.search(reason) for p in patterns):
                bad.append((name, reason))
    for name, reason in bad:
        print(f"unexpected skip: {name}: {reason}")
    if bad:
        print(f"{len(bad)} of {total} skips are not allow-listed in tests/skip-allowlist.txt")
        return 1
    print(f"skips: {total}, all allow-listed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
