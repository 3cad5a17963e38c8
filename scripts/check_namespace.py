"""PEP 420 guard: `livepeer` is a namespace shared by several distributions, so none may own it.

A `src/livepeer/__init__.py` in any distribution (or a `livepeer/__init__.py` inside any built wheel) would make
that distribution shadow all the others at import time. This check fails on either.

    python scripts/check_namespace.py [--root DIR] [--wheels DIST_DIR]
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

NAMESPACE = "livepeer"


def source_violations(root: Path) -> list[str]:
    """Every `<dist>/src/livepeer/__init__.py` under ``root`` (any depth, outside virtualenvs)."""
    found = []
    for init in sorted(root.rglob(f"src/{NAMESPACE}/__init__.py")):
        parts = set(init.relative_to(root).parts)
        if parts & {".venv", ".venv-latest", "node_modules", ".git"}:
            continue
        found.append(str(init.relative_to(root)))
    return found


def distribution_roots(root: Path) -> list[Path]:
    """Every distribution that contributes to the namespace (has `src/livepeer/`)."""
    return sorted(
        p.parent.parent
        for p in root.rglob(f"src/{NAMESPACE}")
        if p.is_dir() and not {".venv", ".venv-latest", ".git"} & set(p.relative_to(root).parts)
    )


def wheel_violations(dist_dir: Path) -> list[str]:
    found = []
    for wheel in sorted(dist_dir.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            if f"{NAMESPACE}/__init__.py" in zf.namelist():
                found.append(f"{wheel.name}: {NAMESPACE}/__init__.py")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--wheels", type=Path, help="also inspect every wheel in this directory")
    args = parser.parse_args(argv)

    problems = [
        f"{p}: remove it — `{NAMESPACE}` is a PEP 420 namespace package"
        for p in source_violations(args.root)
    ]
    dists = distribution_roots(args.root)
    if not dists:
        problems.append(f"no distribution with src/{NAMESPACE}/ found under {args.root}")
    if args.wheels is not None:
        wheels = sorted(args.wheels.glob("*.whl"))
        if not wheels:
            problems.append(f"no wheels in {args.wheels} (run `make build`)")
        problems += [
            f"{w} — a wheel must not ship the namespace's __init__"
            for w in wheel_violations(args.wheels)
        ]

    if problems:
        print("namespace check FAILED:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    checked = f"{len(dists)} distributions" + (f", {len(wheels)} wheels" if args.wheels else "")
    print(f"namespace check passed ({checked})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
