"""Trickle protocol client and server: segmented HTTP streaming used by Livepeer live sessions."""

__version__ = "0.1.0"

__all__ = ["__version__"]
