"""Typed wrappers for Livepeer capabilities. GENERATED from schemas/ by `make generate`."""

__version__ = "0.1.0"

__all__ = ["__version__"]
