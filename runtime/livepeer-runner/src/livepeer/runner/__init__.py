"""Deploy side of the SDK: serve a Python class as a Livepeer BYOC capability container."""

__version__ = "0.1.0"

__all__ = ["__version__"]
