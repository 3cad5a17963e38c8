"""SSE decoder cases that the mutation run (scripts/mutate.py sse) showed no other test pinned down."""

from __future__ import annotations

import re

import pytest

from livepeer.client import LimitError, ProtocolError, SSEDecoder, StreamEvent
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


# ----------------------------------------------------------------------------------------------------------
# Limits at their exact boundaries, for every way the network can cut the stream. The expectation comes from
# a model of what the decoder's docstring promises, written independently of its incremental bookkeeping: a
# line (without its line end) may hold ``max_line`` bytes, an event's lines (the LFs between them included,
# blank lines around it not) ``max_event_bytes``; both count what arrived so far, complete or not.

_BOM = b"\xef\xbb\xbf"

# The streams cover: a BOM; a first line of two bytes; CRLF, lone CR and LF endings, cut anywhere (a CR|LF
# pair across chunks included); comments; fields without a space after the colon; events after a dispatch;
# runs of two and three blank lines, before and after events.
_STREAMS: list[tuple[bytes, list[StreamEvent]]] = [
    (b"\xef\xbb\xbfid\r\ndata: 1234\r\ndata: 5\r\n\r\n", [StreamEvent("1234\n5", None, "")]),
    (
        b"\n\n: c\rdata:xy\r\rretry: 7\nevent:e\ndata: 123456789\n\n\n",
        [StreamEvent("xy"), StreamEvent("123456789", "e", None, 7)],
    ),
    (b"data: a\n\ndata: 1234\n\n", [StreamEvent("a"), StreamEvent("1234")]),
]


def _normalised(prefix: bytes) -> bytes:
    text = b"" if _BOM.startswith(prefix) else prefix.removeprefix(_BOM)  # a BOM's start: undecided
    return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _expected_error(prefix: bytes, max_line: int, max_event: int) -> type[ProtocolError] | None:
    """The error the stream so far must raise (``LimitError`` is a ``ProtocolError``), or None."""
    text = _normalised(prefix)
    long_line = any(len(line) > max_line for line in text.split(b"\n"))
    events = re.split(rb"\n\n+", text.strip(b"\n"))
    big_event = any(len(event) > max_event for event in events)
    if long_line:
        return ProtocolError  # a line and an event both over: either error may come first
    return LimitError if big_event else None


def _limits(stream: bytes) -> list[tuple[int, int]]:
    """(max_line, max_event_bytes) one below, at and one above every line length and event size."""
    text = _normalised(stream)
    lines = {len(line) for line in text.split(b"\n")}
    events = {len(event) for event in re.split(rb"\n\n+", text.strip(b"\n"))}
    big = 1 << 20
    return [(n + d, big) for n in lines | {1} for d in (-1, 0, 1) if n + d > 0] + [
        (big, n + d) for n in events for d in (-1, 0, 1)
    ]


def _splits(n: int) -> list[list[int]]:
    """Chunk boundaries: whole, every one and two cuts, byte at a time."""
    cuts = [[c] for c in range(1, n)] + [[a, b] for a in range(1, n) for b in range(a + 1, n)]
    return [[], *cuts, list(range(1, n))]


@pytest.mark.parametrize(("stream", "events"), _STREAMS)
def test_limits_at_their_boundaries_for_every_split(
    stream: bytes, events: list[StreamEvent]
) -> None:
    assert SSEDecoder().feed(stream) == events
    for max_line, max_event in _limits(stream):
        for cuts in _splits(len(stream)):
            d = SSEDecoder(max_line=max_line, max_event_bytes=max_event)
            got: list[StreamEvent] = []
            for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
                error = _expected_error(stream[:end], max_line, max_event)
                where = (max_line, max_event, cuts, end)
                if error is None:
                    got += d.feed(stream[start:end])
                    whole = SSEDecoder()
                    assert got == whole.feed(stream[:end]), where
                    assert (d.last_id, d.retry) == (whole.last_id, whole.retry), where
                    continue
                with pytest.raises(error) as raised:
                    d.feed(stream[start:end])
                if error is ProtocolError and not any(
                    len(e) > max_event for e in re.split(rb"\n\n+", _normalised(stream[:end]))
                ):
                    assert raised.type is ProtocolError, where  # a long line is not a size limit
                break
