"""scripts/check_imports.py fails on an import circle and passes without one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_imports.py"


def _workspace(tmp: Path, files: dict[str, str]) -> Path:
    """A fake workspace with one distribution, ``runtime/livepeer-toy/src/livepeer/toy``."""
    pkg = tmp / "runtime/livepeer-toy/src/livepeer/toy"
    for rel, text in {"__init__.py": "", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root), *args, "livepeer.toy"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_package_without_a_circle_passes(tmp_path: Path) -> None:
    root = _workspace(
        tmp_path,
        {
            "a.py": "from livepeer.toy import b\nfrom livepeer.toy.sub import c\n",
            "b.py": "import json\nfrom . import sub\n",
            "sub/__init__.py": "",
            "sub/c.py": "from ..b import x\n",
        },
    )
    proc = _run(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "livepeer.toy: 5 modules, 4 internal imports, 0 circle(s)" in proc.stdout


def test_an_import_time_circle_fails_and_is_printed(tmp_path: Path) -> None:
    root = _workspace(
        tmp_path,
        {
            "a.py": "from livepeer.toy.b import thing\n",
            "b.py": "import livepeer.toy.c\n",
            "c.py": "from .a import other\n",
        },
    )
    proc = _run(root)
    assert proc.returncode == 1
    assert "circle among 3 modules: livepeer.toy.a, livepeer.toy.b, livepeer.toy.c" in proc.stdout
    assert (
        "livepeer.toy.a -> livepeer.toy.b (line 1) -> livepeer.toy.c (line 1) -> livepeer.toy.a (line 1)"
        in proc.stdout
    )


def test_a_function_level_import_still_closes_a_circle_unless_eager_only(tmp_path: Path) -> None:
    root = _workspace(
        tmp_path,
        {
            "a.py": "from livepeer.toy import b\n",
            "b.py": "def late():\n    from livepeer.toy.a import x\n    return x\n",
        },
    )
    proc = _run(root)
    assert proc.returncode == 1
    assert "livepeer.toy.a -> livepeer.toy.b (line 1) ~> livepeer.toy.a (line 2)" in proc.stdout

    eager = _run(root, "--eager-only")
    assert eager.returncode == 0, eager.stdout
    listed = _run(root, "--list-lazy")
    assert "lazy: livepeer.toy.b ~> livepeer.toy.a (line 2)" in listed.stdout


def test_type_checking_imports_are_not_edges_but_their_else_branch_is(tmp_path: Path) -> None:
    guarded = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from livepeer.toy.a import T\n"
    )
    root = _workspace(tmp_path, {"a.py": "from livepeer.toy import b\n", "b.py": guarded})
    assert _run(root).returncode == 0

    with_else = guarded + "else:\n    from livepeer.toy import a\n"
    (root / "runtime/livepeer-toy/src/livepeer/toy/b.py").write_text(with_else)
    assert _run(root).returncode == 1


def test_a_package_init_reexporting_its_modules_is_not_a_circle(tmp_path: Path) -> None:
    # Python initialises livepeer.toy before livepeer.toy.a runs, so `a` importing a sibling is no circle.
    root = _workspace(tmp_path, {"a.py": "from livepeer.toy.b import B\n", "b.py": "B = 1\n"})
    (root / "runtime/livepeer-toy/src/livepeer/toy/__init__.py").write_text(
        "from livepeer.toy.a import B\n"
    )
    assert _run(root).returncode == 0

    # ... but a module importing a name the package __init__ defines depends on the __init__: that is one.
    (root / "runtime/livepeer-toy/src/livepeer/toy/b.py").write_text(
        "from livepeer.toy import VERSION\n"
    )
    assert _run(root).returncode == 1


def test_the_devnet_runner_and_trickle_have_no_circle() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "livepeer.devnet", "livepeer.runner", "livepeer.trickle"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
