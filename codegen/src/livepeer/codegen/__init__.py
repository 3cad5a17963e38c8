"""Capability schemas to typed SDK wrappers: the generator behind `make generate`."""

__version__ = "0.1.0"

__all__ = ["__version__"]
