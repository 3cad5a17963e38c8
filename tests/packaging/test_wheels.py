"""The distributions install from their built wheels, outside the workspace, and share one namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# livepeer-client depends on livepeer-capabilities (docs/decisions.md D-newcomer-1), so it comes along.
TOGETHER = ["livepeer-trickle", "livepeer-capabilities", "livepeer-client", "livepeer-runner"]


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)  # the clean venv must not see the workspace's environment
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=env, timeout=300, cwd=cwd
    )


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    built: dict[str, Path] = {}
    for dist in TOGETHER:
        proc = _run(
            [*_uv(), "build", "--package", dist, "--wheel", "--out-dir", str(out)], cwd=ROOT
        )
        assert proc.returncode == 0, proc.stderr
        (wheel,) = out.glob(dist.replace("-", "_") + "-*.whl")
        built[dist] = wheel
    return built


@pytest.mark.slow
def test_wheels_ship_typed_subpackage_and_no_namespace_init(wheels: dict[str, Path]) -> None:
    for dist, wheel in wheels.items():
        sub = dist.removeprefix("livepeer-")
        names = zipfile.ZipFile(wheel).namelist()
        assert "livepeer/__init__.py" not in names, wheel.name
        assert f"livepeer/{sub}/__init__.py" in names, wheel.name
        assert f"livepeer/{sub}/py.typed" in names, wheel.name
        # Each wheel carries only its own subpackage of the namespace.
        assert {n.split("/")[1] for n in names if n.startswith("livepeer/")} == {sub}, wheel.name


@pytest.mark.slow
def test_the_wheels_install_and_import_together_in_a_clean_venv(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    python = subprocess.run(
        [str(ROOT / "scripts/find-python"), f"{sys.version_info[0]}.{sys.version_info[1]}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert _run([*_uv(), "venv", "--quiet", "-p", python, str(venv)]).returncode == 0
    vpy = venv / "bin/python"
    proc = _run(
        [*_uv(), "pip", "install", "--quiet", "--python", str(vpy), *map(str, wheels.values())],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    probe = (
        "import livepeer, livepeer.client, livepeer.runner, livepeer.trickle, livepeer.capabilities\n"
        "paths = list(livepeer.__path__)\n"
        "assert not hasattr(livepeer, '__file__') or livepeer.__file__ is None, livepeer.__file__\n"
        "assert all('site-packages' in p for p in paths), paths\n"
        f"assert not any(m.__file__.startswith({str(ROOT)!r}) for m in (livepeer.client, livepeer.runner, livepeer.trickle))\n"
        "print(livepeer.client.__version__, livepeer.runner.__version__, livepeer.trickle.__version__)\n"
    )
    proc = _run([str(vpy), "-c", probe], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.1.0", "0.1.0", "0.1.0"]
