"""Examples run against the shared offchain devnet."""

from __future__ import annotations

from livepeer.devnet.pytest_plugin import devnet  # noqa: F401
