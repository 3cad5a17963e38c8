"""Deprecated import path. Use ``livepeer.client`` (and ``livepeer.trickle``) instead.

The released ``livepeer-gateway`` 1.0.0 client lived under this name. This distribution keeps old imports
working while pointing at the new API; see docs/migration.md for the new call behind each old one.
"""

from __future__ import annotations

import warnings

__version__ = "2.0.0.dev0"

warnings.warn(
    "livepeer_gateway is deprecated; import livepeer.client instead (see docs/migration.md)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["__version__"]


def __getattr__(name: str) -> object:
    # Names of the 1.0.0 API that are not mapped yet fail loudly instead of as a bare AttributeError
    # somewhere deep in user code.
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"livepeer_gateway.{name} has no equivalent in this version of the shim; "
        "see docs/migration.md for the livepeer.client call that replaces it"
    )
