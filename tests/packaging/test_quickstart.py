"""The README's Install + network Quickstart, executed as a new user would: a clean virtualenv, only
``pip install livepeer-client`` (from the built wheels), then the README's code block with a token in
``LIVEPEER_TOKEN`` (the devnet's, standing in for the dashboard's)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from livepeer.devnet.pytest_plugin import devnet  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
# What `pip install livepeer-client` pulls from this repository (the rest comes from the package index).
WORKSPACE_DISTS = ["livepeer-trickle", "livepeer-capabilities", "livepeer-client"]
MARKER = "<!-- quickstart-network:"


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_")}
    base["UV_PYTHON_DOWNLOADS"] = "never"
    base.pop("VIRTUAL_ENV", None)  # the clean venv must not see the workspace's environment
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        env={**base, **(env or {})},
        timeout=300,
        cwd=cwd,
    )


def readme_block(marker: str) -> tuple[list[str], str]:
    """The ``pip install`` lines of the Install section and the python block after ``marker``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    install = re.search(r"## Install\n\n```sh\n(.*?)```", text, re.S)
    assert install is not None, "README has no Install section with a sh block"
    pips = [line.split("#")[0].strip() for line in install.group(1).splitlines()]
    start = text.index(marker)
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert block is not None, f"no python block after {marker}"
    return [p for p in pips if p], block.group(1)


def test_readme_blocks_are_found() -> None:
    pips, code = readme_block(MARKER)
    assert pips[0] == "pip install livepeer-client"
    assert "Gateway()" in code
    assert "gw.capabilities" in code


@pytest.mark.slow
def test_readme_install_and_quickstart_in_a_clean_venv(tmp_path: Path, devnet: Any) -> None:  # noqa: F811
    dist = tmp_path / "dist"
    for name in WORKSPACE_DISTS:
        proc = _run(
            [*_uv(), "build", "--package", name, "--wheel", "--out-dir", str(dist)], cwd=ROOT
        )
        assert proc.returncode == 0, proc.stderr
    python = subprocess.run(
        [str(ROOT / "scripts/find-python"), f"{sys.version_info[0]}.{sys.version_info[1]}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    venv = tmp_path / "venv"
    assert _run([*_uv(), "venv", "--quiet", "-p", python, str(venv)]).returncode == 0
    vpy = venv / "bin/python"
    pips, code = readme_block(MARKER)
    # The first Install line, exactly: `pip install livepeer-client` (this repository's wheels found locally).
    requirement = pips[0].removeprefix("pip install ").strip()
    proc = _run(
        [
            *_uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(vpy),
            "--find-links",
            str(dist),
            requirement,
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / "work"
    work.mkdir()
    (work / "quickstart.py").write_text(code, encoding="utf-8")
    proc = _run([str(vpy), "quickstart.py"], cwd=work, env={"LIVEPEER_TOKEN": devnet.token})
    assert proc.returncode == 0, proc.stderr
    assert "text-reversal byoc" in proc.stdout  # list_capabilities shows BYOC names
    assert "saved lighthouse.png" in proc.stdout
    assert (work / "lighthouse.png").read_bytes().startswith(b"\x89PNG")
    assert "Echo: Say hello" in proc.stdout
    # The command came with it, under its one name.
    proc = _run([str(venv / "bin/livepeer"), "--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("livepeer 0.1.0")
