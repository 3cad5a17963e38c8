"""SSE decoder cases that the mutation run (scripts/mutate.py sse) showed no other test pinned down."""

from __future__ import annotations

import pytest

from livepeer.client import ProtocolError, SSEDecoder
from livepeer.client._sse import DEFAULT_MAX_LINE


def datas(chunks: list[bytes], **kw: int) -> list[str]:
    d = SSEDecoder(**kw)
    return [e.data for chunk in chunks for e in d.feed(chunk)]


def test_default_line_limit_is_one_mebibyte_inclusive() -> None:
    assert DEFAULT_MAX_LINE == 1 << 20
    exact = b"data: " + b"x" * ((1 << 20) - 6)
    assert datas([exact + b"\n\n"]) == ["x" * ((1 << 20) - 6)]
    # The same line unterminated (still buffered) is also within the limit ...
    assert datas([exact]) == []
    # ... one byte more is not, whether complete or still buffered.
    with pytest.raises(ProtocolError, match="longer than 1048576"):
        datas([exact + b"x\n\n"])
    with pytest.raises(ProtocolError, match="longer than 1048576"):
        datas([exact + b"x"])


def test_limit_applies_exactly_at_max_line() -> None:
    assert datas([b"data: 1234\n\n"], max_line=10) == ["1234"]
    with pytest.raises(ProtocolError):
        datas([b"data: 12345\n\n"], max_line=10)


def test_bom_after_a_leading_blank_line_is_not_stripped() -> None:
    # Only a BOM at the very start of the stream is dropped; a fresh decoder must not swallow the LF.
    assert datas([b"\n\xef\xbb\xbfdata: x\n\n"]) == []
    assert datas([b"\n", b"data: x\n\n"]) == ["x"]


def test_lf_after_split_crlf_is_skipped_only_once() -> None:
    # "a\r" | "\n" is one CRLF; the LF opening the third chunk is a blank line of its own.
    assert datas([b"data: a\r", b"\n", b"\ndata: b\n\n"]) == ["a", "b"]
    assert datas([b"data: a\r", b"\ndata: b\n\n"]) == ["a\nb"]


def test_bom_in_a_later_chunk_is_kept() -> None:
    assert datas([b"data: a\n", b"\xef\xbb\xbfdata: b\n\n"]) == ["a"]


def test_bom_alone_then_stream() -> None:
    assert datas([b"\xef\xbb\xbf", b"data: x\n\n"]) == ["x"]
    assert datas([b"\xef\xbb", b"\xbf", b"data: x\n\n"]) == ["x"]
