"""JSON from other parties: bounded nesting before parsing (deep nesting can exhaust the C stack of the
json scanner and kill the process, measured with ``[`` x 100000 under pytest), one error type after."""

from __future__ import annotations

import json
import re
from itertools import accumulate

from . import limits
from ._errors import LimitError, ProtocolError

__all__ = ["check_depth", "loads"]

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")


def _depth(body: bytes) -> int:
    if body.count(b"[") + body.count(b"{") <= limits.MAX_JSON_DEPTH:
        return 0  # cannot be nested deeper than it has brackets
    skeleton = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(accumulate(1 if c in (0x5B, 0x7B) else -1 for c in skeleton), default=0)


def check_depth(body: bytes | str, what: str) -> None:
    """``LimitError`` if ``body`` nests deeper than ``limits.MAX_JSON_DEPTH`` (call before json.loads)."""
    raw = body.encode() if isinstance(body, str) else body
    if _depth(raw) > limits.MAX_JSON_DEPTH:
        raise LimitError(f"{what} is JSON nested deeper than {limits.MAX_JSON_DEPTH} levels")


def loads(body: bytes | str, what: str) -> object:
    """``json.loads`` that raises ``ProtocolError`` naming ``what`` for anything unparseable or too deep."""
    raw = body.encode() if isinstance(body, str) else body
    check_depth(raw, what)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError(f"{what} is not valid JSON") from None
