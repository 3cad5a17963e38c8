"""Every distribution of the workspace is complete and consistent: metadata, version, typing marker."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DISTS = {
    "runtime/livepeer-trickle": "livepeer.trickle",
    "runtime/livepeer-client": "livepeer.client",
    "runtime/livepeer-runner": "livepeer.runner",
    "runtime/livepeer-devnet": "livepeer.devnet",
    "runtime/livepeer-gateway": "livepeer_gateway",
    "generated": "livepeer.capabilities",
    "codegen": "livepeer.codegen",
}


def _field(pyproject: Path, key: str) -> str:
    match = re.search(rf'^{key}\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    assert match, f"{pyproject}: no {key}"
    return match.group(1)


@pytest.mark.parametrize(("path", "module"), sorted(DISTS.items()))
def test_distribution_is_complete(path: str, module: str) -> None:
    dist = ROOT / path
    pyproject = dist / "pyproject.toml"
    # Generated READMEs start with a header comment, so look for the heading on any line.
    readme = (dist / "README.md").read_text().splitlines()
    assert f"# {_field(pyproject, 'name')}" in readme
    assert _field(pyproject, "requires-python") == ">=3.10"
    pkg_dir = dist / "src" / Path(*module.split("."))
    assert (pkg_dir / "py.typed").exists()
    assert not (dist / "src/livepeer/__init__.py").exists()
    # The shim's DeprecationWarning is asserted in a fresh interpreter below: here the module may already
    # have been imported by another test, so the warning is not guaranteed.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = importlib.import_module(module)
    assert mod.__version__ == _field(pyproject, "version")


def test_every_member_is_in_the_workspace_and_lock() -> None:
    lock = (ROOT / "uv.lock").read_text()
    for path in DISTS:
        name = _field(ROOT / path / "pyproject.toml", "name")
        assert f'name = "{name}"' in lock, f"{name} missing from uv.lock"


def test_gateway_shim_warns_on_import_in_a_fresh_interpreter() -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", "import livepeer_gateway"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "livepeer_gateway is deprecated; import livepeer.client instead" in proc.stderr
