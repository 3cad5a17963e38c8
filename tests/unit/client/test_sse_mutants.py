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


def test_event_size_limit_counts_every_data_line_and_resets_per_event() -> None:
    from livepeer.client._sse import DEFAULT_MAX_EVENT_BYTES

    assert DEFAULT_MAX_EVENT_BYTES == 16 << 20
    assert SSEDecoder().max_event_bytes == DEFAULT_MAX_EVENT_BYTES
    # Two events of 16 bytes each under a 20-byte limit: the count restarts with each event.
    two = b"data: 12345678\n\n" * 2
    assert datas([two], max_event_bytes=20) == ["12345678", "12345678"]
    assert datas([two[:10], two[10:]], max_event_bytes=20) == ["12345678", "12345678"]
    # Many short lines add up to one event over the limit, complete or still arriving.
    many = b"data: 1234\ndata: 5678\ndata: 9"
    for chunks in ([many + b"\n\n"], [many], [many[:12], many[12:]]):
        with pytest.raises(ProtocolError, match="SSE event larger than 20 bytes"):
            datas(chunks, max_event_bytes=20)


def test_event_json_refuses_deep_nesting() -> None:
    from livepeer.client import StreamEvent

    assert StreamEvent("[[1]]").json() == [[1]]
    with pytest.raises(ProtocolError, match="SSE event data"):
        StreamEvent("[" * 10_000 + "]" * 10_000).json()
