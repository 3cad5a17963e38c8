"""`make demo` runs examples/demo.py: a devnet subprocess plus every README example against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


@pytest.mark.slow
def test_demo_runs_every_example_against_a_fresh_devnet() -> None:
    proc = subprocess.run(
        [sys.executable, str(DEMO)], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "devnet ready in" in out
    assert "'reversed': 'reepevil olleh'" in out  # run
    assert "{'index': 0, 'token': 'streaming'}" in out  # stream
    assert "rejected before sending: text-to-image: invalid input: width" in out  # typed wrapper
    assert "first output frame 256x256" in out  # live
    assert "4/4 examples succeeded" in out
