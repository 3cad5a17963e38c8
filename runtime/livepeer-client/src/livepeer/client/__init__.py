"""The Livepeer SDK: call any capability of the Livepeer network with run, stream or live."""

__version__ = "0.1.0"

__all__ = ["__version__"]
