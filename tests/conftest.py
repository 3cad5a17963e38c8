"""Workspace-wide pytest configuration.

Async tests use anyio's pytest plugin (``@pytest.mark.anyio``); asyncio is the default backend and suites
that must also prove trio support parametrize ``anyio_backend`` themselves.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
