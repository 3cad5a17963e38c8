"""Validate .github/workflows without GitHub: schema, plus the rules our release process relies on.

1. Every workflow validates against the GitHub workflow JSON schema that `check-jsonschema` ships (offline).
2. Every distribution of the workspace has `publish-<distribution>.yml`, triggered only by tags
   `<distribution>-v*`, which calls the shared `_publish.yml` with that distribution's name.
3. `_publish.yml` publishes with PyPI trusted publishing (`id-token: write`, pypa/gh-action-pypi-publish) and
   checks the tag against the distribution's version before uploading.

    python scripts/check_workflows.py [--root DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r'^name\s*=\s*"([^"]+)"', re.MULTILINE)


def distributions(root: Path) -> list[str]:
    """Names of the workspace members (runtime/*, generated, codegen)."""
    names = []
    for pyproject in sorted(
        [
            *root.glob("runtime/*/pyproject.toml"),
            root / "generated/pyproject.toml",
            root / "codegen/pyproject.toml",
        ]
    ):
        if pyproject.exists() and (m := NAME_RE.search(pyproject.read_text())):
            names.append(m.group(1))
    return names


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    # YAML 1.1 reads the key `on` as boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def check_publish(root: Path, problems: list[str]) -> None:
    wf_dir = root / ".github/workflows"
    shared = wf_dir / "_publish.yml"
    if not shared.exists():
        problems.append(f"{shared.relative_to(root)} is missing")
    else:
        text = shared.read_text()
        data = load(shared)
        if "workflow_call" not in (data.get("on") or {}):
            problems.append("_publish.yml must be a reusable workflow (on: workflow_call)")
        if "id-token: write" not in text:
            problems.append("_publish.yml must request `id-token: write` (PyPI trusted publishing)")
        if "pypa/gh-action-pypi-publish" not in text:
            problems.append("_publish.yml must publish with pypa/gh-action-pypi-publish")
        if "GITHUB_REF_NAME" not in text:
            problems.append("_publish.yml must check the tag against the distribution version")
    for dist in distributions(root):
        path = wf_dir / f"publish-{dist}.yml"
        if not path.exists():
            problems.append(
                f"{path.relative_to(root)} is missing (one publish workflow per distribution)"
            )
            continue
        data = load(path)
        tags = (((data.get("on") or {}).get("push") or {}).get("tags")) or []
        if tags != [f"{dist}-v*"]:
            problems.append(f"{path.name}: must trigger on tags ['{dist}-v*'] only, found {tags!r}")
        jobs = data.get("jobs") or {}
        calls = [j for j in jobs.values() if str(j.get("uses", "")).endswith("/_publish.yml")]
        if len(calls) != 1 or (calls[0].get("with") or {}).get("distribution") != dist:
            problems.append(
                f"{path.name}: must call ./.github/workflows/_publish.yml with distribution: {dist}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    root: Path = args.root
    files = sorted((root / ".github/workflows").glob("*.yml"))
    problems: list[str] = []
    if not files:
        problems.append("no workflows in .github/workflows")
    else:
        schema = subprocess.run(
            [
                sys.executable,
                "-m",
                "check_jsonschema",
                "--builtin-schema",
                "vendor.github-workflows",
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if schema.returncode != 0:
            problems.append("schema validation failed:\n" + schema.stdout + schema.stderr)
        check_publish(root, problems)
    if problems:
        print("workflow check FAILED:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"workflow check passed ({len(files)} workflows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
