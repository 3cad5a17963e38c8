"""Run mypy --strict over the typing cases, so a regression in the generated types fails the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.mark.parametrize("case", sorted(p.name for p in HERE.glob("typing_*.py")))
def test_mypy_strict_accepts_the_typing_cases(case: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--config-file",
            str(REPO / "pyproject.toml"),
            str(HERE / case),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_catches_a_wrong_assertion(tmp_path: Path) -> None:
    """The harness itself can fail: a wrong assert_type is reported."""
    bad = tmp_path / "typing_bad.py"
    bad.write_text(
        "from typing_extensions import assert_type\n"
        "from livepeer.capabilities.text_reversal import ReversalOutput, TextReversal\n"
        "def f(w: TextReversal) -> None:\n"
        "    assert_type(w.run(text='x'), str)\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(REPO / "pyproject.toml"),
            str(bad),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=110,
    )
    assert proc.returncode == 1
    assert "assert-type" in proc.stdout
