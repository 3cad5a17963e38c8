"""Argument checks at the door: wrong types and values fail before any I/O, naming the argument.

Every check raises ``ConfigError`` (Gateway configuration) or ``ValidationError`` (per-call arguments) and
never echoes a value that may be a secret.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence

from ._errors import ConfigError, LivepeerError, ValidationError
from ._files import is_file, is_file_list

__all__ = [
    "MAX_INPUT_DEPTH",
    "check_capability",
    "check_count",
    "check_headers",
    "check_input",
    "check_model",
    "check_price",
    "check_seconds",
    "check_strings",
    "did_you_mean",
]

# Capability names are BYOC names (`text-reversal`), pipelines (`text-to-image`), apps (`pipeline/model`) and
# model ids (`stabilityai/sd-turbo`, `org/model:tag`): letters, digits and a few separators, never whitespace
# or control characters (they end up in HTTP headers and URL paths).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]*")
MAX_NAME = 256
# Deeper than any real payload (the deepest schema in schemas/ nests 4 levels); bounds recursion on hostile
# or accidental self-similar input.
MAX_INPUT_DEPTH = 64
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, sorted(set(choices)), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def _err(config: bool) -> type[LivepeerError]:
    return ConfigError if config else ValidationError


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_seconds(
    value: object, name: str, *, config: bool = False, optional: bool = False
) -> None:
    """A finite, positive number of seconds (``None`` allowed when ``optional``)."""
    if value is None and optional:
        return
    if not _is_real(value):
        raise _err(config)(f"{name} must be a number of seconds, not {type(value).__name__}")
    assert isinstance(value, (int, float))
    if not math.isfinite(value) or value <= 0:
        raise _err(config)(f"{name} must be a finite number of seconds above 0, got {value!r}")


def check_count(value: object, name: str, *, limit: int = 100) -> None:
    """A whole number 0..limit (``True`` is not a count)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, not {type(value).__name__}")
    if not 0 <= value <= limit:
        raise ConfigError(f"{name} must be between 0 and {limit}, got {value}")


def check_price(value: object, name: str) -> None:
    """``None`` or a finite price >= 0."""
    if value is None:
        return
    if not _is_real(value):
        raise ConfigError(f"{name} must be a number (wei per unit), not {type(value).__name__}")
    assert isinstance(value, (int, float))
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")


def check_capability(value: object, name: str = "capability") -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValidationError(f"{name} must be a non-empty string")
    if len(value) > MAX_NAME or not _NAME.fullmatch(value):
        shown = value if len(value) <= 60 else value[:60] + "…"
        raise ValidationError(
            f"{name} {shown!r} is not a capability name (letters, digits and . _ : / @ + = -, "
            f"at most {MAX_NAME} characters, e.g. 'text-to-image')"
        )
    return value


def check_model(value: object, name: str = "model") -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string or None, not {type(value).__name__}")
    if value:  # "" means "let the network choose", as in the typed wrappers
        check_capability(value, name)


def _check_value(value: object, where: str, depth: int) -> None:
    if depth > MAX_INPUT_DEPTH:
        raise ValidationError(f"{where} nests deeper than {MAX_INPUT_DEPTH} levels")
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{where} is {value!r}, which JSON cannot carry")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(
                    f"{where} has a key of type {type(k).__name__}; JSON keys are strings"
                )
            _check_value(v, f"{where}[{k!r}]", depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_value(v, f"{where}[{i}]", depth + 1)
        return
    raise ValidationError(
        f"{where} is a {type(value).__name__}, which is not JSON-serializable "
        "(files are accepted only as top-level input values)"
    )


def check_input(value: object, name: str = "input") -> None:
    """A mapping of field names to JSON values; top-level values may also be files or lists of files
    (multipart: one part per file under the field's name)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{name} must be a mapping of field names to values, not {type(value).__name__}"
        )
    for k, v in value.items():
        if not isinstance(k, str):
            raise ValidationError(f"{name} keys must be strings, got {type(k).__name__}")
        if not is_file(v) and not is_file_list(v):
            _check_value(v, f"{name}[{k!r}]", 1)


def check_headers(value: object, name: str) -> None:
    """A mapping of header names to header values without line breaks (values are never echoed)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping of header names to values")
    for k, v in value.items():
        if not isinstance(k, str) or not _HEADER_NAME.fullmatch(k):
            raise ConfigError(f"{name} holds an invalid header name {str(k)[:40]!r}")
        if not isinstance(v, str) or any(c in v for c in "\r\n\0"):
            raise ConfigError(f"{name}[{k!r}] must be a string without line breaks")


def check_strings(value: object, name: str) -> Sequence[str] | str | None:
    """``None``, a string, or a sequence of strings (orchestrator URL lists)."""
    if value is None or isinstance(value, str):
        return value
    if (
        isinstance(value, Sequence)
        and not isinstance(value, (bytes, bytearray))
        and all(isinstance(v, str) for v in value)
    ):
        return list(value)
    raise ConfigError(f"{name} must be a URL string or a list of URL strings")
