"""A local emulation of a Livepeer network (orchestrators, remote signer, discovery) on loopback."""

__version__ = "0.1.0"

__all__ = ["__version__"]
