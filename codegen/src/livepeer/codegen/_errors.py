"""Errors of the generator; each names the schema path it is about."""

from __future__ import annotations

__all__ = ["CodegenError"]


class CodegenError(Exception):
    """A schema the generator cannot import or render.

    ``path`` is where: a file or URL plus a JSON pointer, e.g. ``llm.json#/input/properties/x``.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
