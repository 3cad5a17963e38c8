"""Snapshot of the whole public API (every public module, name and signature).

An intended change updates the snapshot in the same commit:
``.venv/bin/python -m pytest tests/surface --snapshot-update``.
"""

from __future__ import annotations

from typing import Any

import pytest

PACKAGES = ["livepeer.client", "livepeer.capabilities", "livepeer.trickle", "livepeer.runner"]


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_surface(package: str, api_surface: Any, snapshot: Any) -> None:
    text = api_surface(package)
    assert text.startswith(f"module {package}\n")
    assert text == snapshot


def test_surface_sees_signatures(api_surface: Any) -> None:
    """The walker reports keyword-only typed parameters of generated wrappers (so the snapshot can fail)."""
    text = api_surface("livepeer.capabilities")
    assert "module livepeer.capabilities.text_to_image" in text
    assert "def run(self, *, prompt: 'str', model_id: 'str' = ''" in text
