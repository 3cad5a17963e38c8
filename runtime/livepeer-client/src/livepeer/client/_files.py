"""File inputs (``Path``, ``bytes``, binary file objects) and ``FileOutput`` results."""

from __future__ import annotations

import base64
import json
import mimetypes
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from ._errors import ValidationError

__all__ = [
    "FileOutput",
    "has_files",
    "is_file",
    "is_file_list",
    "multipart_body",
    "multipart_parts",
    "read_file_objects",
    "replace_urls",
]

Fetch = Callable[[str], tuple[bytes, str | None]]
AsyncFetch = Callable[[str], Awaitable[tuple[bytes, str | None]]]


class FileOutput:
    """A media result: ``out.read()``, ``await out.aread()``, ``out.save("cat.png")``, ``out.url``.

    ``data:`` URLs decode locally; http(s) URLs are fetched lazily from the orchestrator that answered.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        content: bytes | None = None,
        content_type: str | None = None,
        fetch: Fetch | None = None,
        afetch: AsyncFetch | None = None,
    ) -> None:
        self.url = url
        self.content_type = content_type
        self._content = content
        self._fetch = fetch
        self._afetch = afetch
        if content is None and url is not None and url.startswith("data:"):
            self._content, ctype = _decode_data_url(url)
            self.content_type = self.content_type or ctype

    def __repr__(self) -> str:
        shown = self.url if self.url and not self.url.startswith("data:") else "data:…"
        return f"FileOutput(url={shown!r}, content_type={self.content_type!r})"

    def read(self) -> bytes:
        """Return the bytes (fetched once, then kept)."""
        if self._content is None:
            if self._fetch is None or self.url is None:
                raise ValidationError("this FileOutput has no content and no URL to fetch")
            self._content, ctype = self._fetch(self.url)
            self.content_type = self.content_type or ctype
        return self._content

    async def aread(self) -> bytes:
        """Async twin of ``read()``."""
        if self._content is None:
            if self._afetch is None or self.url is None:
                return self.read()
            self._content, ctype = await self._afetch(self.url)
            self.content_type = self.content_type or ctype
        return self._content

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the bytes to ``path`` and return it as a ``Path``."""
        target = Path(path)
        target.write_bytes(self.read())
        return target


def _decode_data_url(url: str) -> tuple[bytes, str | None]:
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise ValidationError("malformed data: URL in response")
    params = header.split(";")
    ctype = params[0] or None
    if "base64" in params[1:]:
        try:
            return base64.b64decode(payload), ctype
        except ValueError:
            raise ValidationError("malformed base64 in data: URL") from None
    return unquote_to_bytes(payload), ctype


def is_file(value: object) -> bool:
    """Paths, bytes and binary file objects are files; strings never are (no path guessing)."""
    return isinstance(value, (Path, bytes, bytearray, memoryview)) or (
        hasattr(value, "read") and not isinstance(value, str)
    )


def is_file_list(value: object) -> bool:
    """A non-empty list of files: one multipart part per file, all under the field's name."""
    return isinstance(value, (list, tuple)) and bool(value) and all(is_file(v) for v in value)


def has_files(payload: Mapping[str, object] | None) -> bool:
    return payload is not None and any(is_file(v) or is_file_list(v) for v in payload.values())


def multipart_body(
    payload: Mapping[str, object],
) -> tuple[
    dict[str, str],
    dict[str, tuple[str, bytes | IO[bytes], str]]
    | list[tuple[str, tuple[str, bytes | IO[bytes], str]]],
]:
    """Form fields and file parts; a list of files becomes one part per file under the same name (then the
    parts are a list of pairs, else the usual mapping)."""
    lists = {k: v for k, v in payload.items() if isinstance(v, (list, tuple)) and is_file_list(v)}
    data, files = multipart_parts({k: v for k, v in payload.items() if k not in lists})
    if not lists:
        return data, files
    parts = list(files.items())
    for key, values in lists.items():
        parts += [(key, _file_tuple(key, v)) for v in values]
    return data, parts


class _Loaded(bytes):
    """A file object's content, read once before the first attempt, with the file's name."""

    filename: str


def read_file_objects(payload: Mapping[str, object] | None) -> Mapping[str, object] | None:
    """``payload`` with each file object (``read()``) replaced by its content, read now and once.

    Every attempt builds its body anew; a file object read by the first attempt would give a retry or a
    failover nothing but an empty part. Reading before selection also refuses a text-mode file before any
    request, and lets the AI route size an image or a WAV given as a file object (it reads bytes and paths).
    """
    if payload is None or not has_files(payload):
        return payload
    out: dict[str, object] = {}
    for key, value in payload.items():
        if isinstance(value, (list, tuple)) and is_file_list(value):
            out[key] = [_load(key, v) for v in value]
        else:
            out[key] = _load(key, value) if is_file(value) else value
    return out


def _load(name: str, value: object) -> object:
    if isinstance(value, (Path, bytes, bytearray, memoryview)):
        return value
    data = value.read()  # type: ignore[attr-defined]
    if not isinstance(data, bytes):
        raise ValidationError(f"input {name!r}: file objects must be opened in binary mode")
    loaded = _Loaded(data)
    loaded.filename = os.path.basename(str(getattr(value, "name", name))) or name
    return loaded


def _file_tuple(name: str, value: Any) -> tuple[str, bytes | IO[bytes], str]:
    if isinstance(value, Path):
        try:
            content = value.read_bytes()
        except OSError as exc:
            raise ValidationError(f"cannot read input file {name!r}: {exc.strerror}") from None
        filename = value.name
    elif isinstance(value, (bytes, bytearray, memoryview)):
        content, filename = bytes(value), getattr(value, "filename", name)
    else:
        data = value.read()
        if not isinstance(data, bytes):
            raise ValidationError(f"input {name!r}: file objects must be opened in binary mode")
        content = data
        filename = os.path.basename(str(getattr(value, "name", name))) or name
    ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return filename, content, ctype


def multipart_parts(
    payload: Mapping[str, object],
) -> tuple[dict[str, str], dict[str, tuple[str, bytes | IO[bytes], str]]]:
    """Split input into form fields (JSON-encoded unless already a string) and files."""
    data: dict[str, str] = {}
    files: dict[str, tuple[str, bytes | IO[bytes], str]] = {}
    for key, value in payload.items():
        if value is None:
            continue
        if is_file(value):
            files[key] = _file_tuple(key, value)
        elif isinstance(value, str):
            data[key] = value
        elif isinstance(value, bool):
            data[key] = "true" if value else "false"
        else:
            data[key] = json.dumps(value)
    return data, files


def replace_urls(value: object, make: Callable[[str], FileOutput]) -> object:
    """Replace every object member ``"url"`` holding a string by ``make(url)`` (AI-runner Media)."""
    if isinstance(value, dict):
        return {
            k: make(v) if k == "url" and isinstance(v, str) else replace_urls(v, make)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [replace_urls(v, make) for v in value]
    return value
