"""Package-level behaviour: cheap import, lazy public names."""

from __future__ import annotations

import subprocess
import sys

import pytest

import livepeer.runner


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, livepeer.runner\n"
        "heavy = ['av', 'numpy', 'httpx', 'starlette', 'hypercorn', 'livepeer.trickle']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_public_name_resolves() -> None:
    for name in livepeer.runner.__all__:
        assert getattr(livepeer.runner, name) is not None
    assert set(livepeer.runner.__all__) <= set(dir(livepeer.runner))
    with pytest.raises(AttributeError, match="does_not_exist"):
        _ = livepeer.runner.does_not_exist
