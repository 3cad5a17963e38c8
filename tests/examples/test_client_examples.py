"""The client examples run unchanged against the devnet (as a user would: a subprocess with
LIVEPEER_TOKEN set)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(name: str, args: list[str], token: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_")}
    env["LIVEPEER_TOKEN"] = token
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_run(devnet: Any) -> None:
    out = _run("run.py", ["hello", "world"], devnet.token)
    assert ast.literal_eval(out.strip()) == {"original": "hello world", "reversed": "dlrow olleh"}


def test_run_async(devnet: Any) -> None:
    out = _run("run_async.py", ["ab", "cd"], devnet.token)
    assert [ast.literal_eval(line)["reversed"] for line in out.splitlines()] == ["ba", "dc"]


def test_stream(devnet: Any) -> None:
    out = _run("stream.py", ["one", "two"], devnet.token)
    tokens = [ast.literal_eval(line)["token"] for line in out.splitlines() if line.startswith("{")]
    assert tokens == ["one", "two"]


def test_stream_async(devnet: Any) -> None:
    out = _run("stream_async.py", ["say", "this"], devnet.token)
    assert "say this" in out


@pytest.mark.parametrize("name", ["run.py", "run_async.py", "stream.py", "stream_async.py"])
def test_examples_fail_cleanly_without_configuration(name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "no orchestrators configured" in proc.stderr
