"""The guards behind `make check` fail on the mistakes they exist to catch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _fake_workspace(tmp: Path) -> Path:
    for dist, sub in [
        ("runtime/livepeer-client", "client"),
        ("runtime/livepeer-trickle", "trickle"),
    ]:
        pkg = tmp / dist / "src/livepeer" / sub
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
    return tmp


def test_namespace_check_passes_on_the_repository() -> None:
    proc = _script("check_namespace.py")
    assert proc.returncode == 0, proc.stderr
    assert "namespace check passed" in proc.stdout


def test_namespace_check_passes_on_a_clean_fake_workspace(tmp_path: Path) -> None:
    proc = _script("check_namespace.py", "--root", str(_fake_workspace(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert "2 distributions" in proc.stdout


def test_namespace_check_fails_on_a_namespace_init(tmp_path: Path) -> None:
    root = _fake_workspace(tmp_path)
    (root / "runtime/livepeer-trickle/src/livepeer/__init__.py").write_text("")
    proc = _script("check_namespace.py", "--root", str(root))
    assert proc.returncode == 1
    assert "runtime/livepeer-trickle/src/livepeer/__init__.py" in proc.stderr


def test_namespace_check_fails_on_a_wheel_that_ships_the_namespace_init(tmp_path: Path) -> None:
    root = _fake_workspace(tmp_path / "ws")
    dist = tmp_path / "dist"
    dist.mkdir()
    with zipfile.ZipFile(dist / "livepeer_client-0.1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("livepeer/client/__init__.py", "")
    with zipfile.ZipFile(dist / "livepeer_bad-0.1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("livepeer/__init__.py", "")
        zf.writestr("livepeer/bad/__init__.py", "")
    proc = _script("check_namespace.py", "--root", str(root), "--wheels", str(dist))
    assert proc.returncode == 1
    assert "livepeer_bad-0.1.0-py3-none-any.whl" in proc.stderr
    assert "livepeer_client" not in proc.stderr


def test_workflow_check_passes_on_the_repository() -> None:
    proc = _script("check_workflows.py")
    assert proc.returncode == 0, proc.stderr + proc.stdout


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    for pyproject in [
        *ROOT.glob("runtime/*/pyproject.toml"),
        ROOT / "generated/pyproject.toml",
        ROOT / "codegen/pyproject.toml",
    ]:
        target = tmp_path / pyproject.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(pyproject, target)
    return tmp_path


def test_workflow_check_fails_when_a_distribution_has_no_publish_workflow(
    workflow_copy: Path,
) -> None:
    (workflow_copy / ".github/workflows/publish-livepeer-runner.yml").unlink()
    proc = _script("check_workflows.py", "--root", str(workflow_copy))
    assert proc.returncode == 1
    assert "publish-livepeer-runner.yml is missing" in proc.stderr


def test_workflow_check_fails_on_a_schema_error(workflow_copy: Path) -> None:
    ci = workflow_copy / ".github/workflows/ci.yml"
    ci.write_text(ci.read_text().replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"))
    proc = _script("check_workflows.py", "--root", str(workflow_copy))
    assert proc.returncode == 1
    assert "schema validation failed" in proc.stderr


def test_workflow_check_fails_on_a_wrong_tag_pattern(workflow_copy: Path) -> None:
    wf = workflow_copy / ".github/workflows/publish-livepeer-client.yml"
    wf.write_text(wf.read_text().replace('"livepeer-client-v*"', '"v*"'))
    proc = _script("check_workflows.py", "--root", str(workflow_copy))
    assert proc.returncode == 1
    assert "publish-livepeer-client.yml: must trigger on tags" in proc.stderr
