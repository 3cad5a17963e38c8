from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livepeer.client import LimitError, ProtocolError, SSEDecoder, StreamEvent


def decode(data: bytes, **kw: int) -> list[StreamEvent]:
    return SSEDecoder(**kw).feed(data)


def test_basic_fields_and_multiline_data() -> None:
    events = decode(b"event: tick\nid: 7\ndata: a\ndata:b\ndata:  c\n\n")
    assert events == [StreamEvent("a\nb\n c", "tick", "7", None)]


def test_comments_unknown_fields_and_no_dispatch_without_data() -> None:
    events = decode(b": keepalive\nfoo: bar\nevent: x\n\ndata: y\n\n")
    assert [(e.data, e.event) for e in events] == [("y", None)]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol: bytes) -> None:
    raw = eol.join([b"data: one", b"", b"data: two", b"", b""])
    assert [e.data for e in decode(raw)] == ["one", "two"]


def test_crlf_split_across_chunks() -> None:
    d = SSEDecoder()
    out = d.feed(b"data: a\r") + d.feed(b"\n\r") + d.feed(b"\ndata: b\r\n\r\n")
    assert [e.data for e in out] == ["a", "b"]


def test_bom_stripped_once_even_when_split() -> None:
    d = SSEDecoder()
    out = d.feed(b"\xef") + d.feed(b"\xbb") + d.feed(b"\xbfdata: x\n\n\xef\xbb\xbfdata: y\n\n")
    # Only a leading BOM is dropped; a later one makes the field name unknown.
    assert [e.data for e in out] == ["x"]


def test_id_persists_and_null_id_ignored() -> None:
    events = decode(b"id: 1\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["1", "1", "1", ""]


def test_retry_only_digits() -> None:
    d = SSEDecoder()
    events = d.feed(b"retry: 1500\ndata: a\n\nretry: 1x\ndata: b\n\n")
    assert [e.retry for e in events] == [1500, None]
    assert d.retry == 1500


def test_empty_data_dispatches_empty_string() -> None:
    assert [e.data for e in decode(b"data\n\ndata:\n\n")] == ["", ""]


def test_incomplete_event_is_not_dispatched() -> None:
    assert decode(b"data: never finished\n") == []


def test_line_length_limit() -> None:
    d = SSEDecoder(max_line=16)
    with pytest.raises(ProtocolError):
        d.feed(b"data: " + b"x" * 64)
    d = SSEDecoder(max_line=16)
    with pytest.raises(ProtocolError):
        d.feed(b"data: " + b"x" * 64 + b"\n\n")


def test_event_size_limit_counts_every_line_of_one_event() -> None:
    # Each line is short; together they are over the cap, whether they arrive at once or piecemeal.
    big = b"".join(b"data: %02d\n" % i for i in range(8)) + b"\n"  # 72 bytes of lines
    with pytest.raises(LimitError, match="event larger than 64"):
        SSEDecoder(max_event_bytes=64).feed(big)
    d = SSEDecoder(max_event_bytes=64)
    for i in range(64):  # never terminated: the held part alone must trip the cap
        d.feed(big[i : i + 1])
    with pytest.raises(LimitError, match="event larger than 64"):
        d.feed(big[64:65])
    # The cap is per event: many small events in one chunk are fine.
    assert len(SSEDecoder(max_event_bytes=64).feed(b"data: x\n\n" * 100)) == 100


def test_line_limit_applies_to_complete_lines_of_an_unfinished_event() -> None:
    with pytest.raises(ProtocolError, match="line longer"):
        SSEDecoder(max_line=16).feed(b"data: " + b"x" * 32 + b"\nid: 1\n")


def test_blank_line_split_across_chunks() -> None:
    d = SSEDecoder()
    assert d.feed(b"id: 1\ndata: a\n") == []
    assert d.feed(b"\n") == [StreamEvent("a", None, "1")]
    assert d.feed(b"data: b\r") == []
    assert d.feed(b"\n") == []
    assert d.feed(b"\r") == [StreamEvent("b", None, "1")]
    assert d.feed(b"\ndata: c\r\n\r\n") == [StreamEvent("c", None, "1")]


def test_retry_of_an_unfinished_event_is_visible() -> None:
    d = SSEDecoder()
    d.feed(b"retry: 10\n\nretry: 2500\ndata: x\nretry: 9")
    assert d.retry == 2500  # "retry: 9" is not a complete line yet
    assert d.feed(b"\n\n") == [StreamEvent("x", None, None, 9)]
    assert d.retry == 9


def test_fast_and_general_paths_agree() -> None:
    # The common shape and its variations that must leave the regex fast path.
    raw = (
        b"id: 1\nevent: e\ndata: a\n\n"
        b"id: 2\x00\nevent: e\ndata: b\n\n"  # NUL: id ignored
        b"event:\ndata: c\n\n"  # empty event name is no name
        b"id: 3\ndata: d1\ndata: d2\n\n"
        b"data:e\nevent: late\n\n"
        b"id: 4\nevent: e\n: comment\ndata: f\n\n"
    )
    assert decode(raw) == [
        StreamEvent("a", "e", "1"),
        StreamEvent("b", "e", "1"),
        StreamEvent("c", None, "1"),
        StreamEvent("d1\nd2", None, "3"),
        StreamEvent("e", "late", "3"),
        StreamEvent("f", "e", "4"),
    ]


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"data: \xff\n\n")[0].data == "\ufffd"


def test_json_helper() -> None:
    assert StreamEvent('{"a": [1]}').json() == {"a": [1]}


_field = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b":", b"x"])
_value = st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    parts = [b"\xef\xbb\xbf"] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            parts.append(draw(_eol))
        else:
            name = draw(_field)
            sep = draw(st.sampled_from([b":", b": ", b""]))
            parts.append(name + sep + draw(_value) + draw(_eol))
    return b"".join(parts)


@settings(max_examples=300, deadline=None)
@given(stream=sse_streams(), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_any_split_gives_the_same_events(stream: bytes, cuts: list[int]) -> None:
    whole = SSEDecoder().feed(stream)
    d = SSEDecoder()
    pieces: list[StreamEvent] = []
    points = sorted({c % (len(stream) + 1) for c in cuts})
    start = 0
    for p in [*points, len(stream)]:
        pieces += d.feed(stream[start:p])
        start = p
    assert pieces == whole
    # The last event id is consistent with what was dispatched.
    if whole:
        assert whole[-1].id is None or isinstance(whole[-1].id, str)


@settings(max_examples=200, deadline=None)
@given(stream=sse_streams())
def test_byte_at_a_time_gives_the_same_events_and_state(stream: bytes) -> None:
    # Every chunk boundary at once: CR|LF, blank lines, BOM and fields cut at every byte.
    whole = SSEDecoder()
    expected = whole.feed(stream)
    d = SSEDecoder()
    got = [ev for i in range(len(stream)) for ev in d.feed(stream[i : i + 1])]
    assert got == expected
    assert (d.last_id, d.retry) == (whole.last_id, whole.retry)


_utf8 = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=6
).map(str.encode)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(_utf8, min_size=1, max_size=8),
    eol=_eol,
    cuts=st.lists(st.integers(0, 400), max_size=12),
)
def test_multibyte_text_split_anywhere(values: list[bytes], eol: bytes, cuts: list[int]) -> None:
    # Chunks cut inside a UTF-8 sequence must not corrupt text: lines are decoded only when complete.
    stream = b"".join(b"id: " + v + eol + b"data: " + v + eol + eol for v in values)
    d = SSEDecoder()
    points = sorted({c % (len(stream) + 1) for c in cuts})
    got: list[StreamEvent] = []
    start = 0
    for p in [*points, len(stream)]:
        got += d.feed(stream[start:p])
        start = p
    assert [(e.data, e.id) for e in got] == [(v.decode(), v.decode()) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_arbitrary_bytes_never_crash(chunks: list[bytes]) -> None:
    d = SSEDecoder(max_line=48)
    for c in chunks:
        try:
            events = d.feed(c)
        except ProtocolError:
            return
        for ev in events:
            assert isinstance(ev.data, str)
            assert "\r" not in ev.data


@pytest.mark.parametrize(
    ("stream", "size"),
    [
        (b"data: 1234\ndata: 5678\n\n", 21),  # a cut after the last LF: that LF is not the event's
        (b"data:abc\n\n\r", 8),  # a third line end: a blank line after the event, not part of it
        (b"\r\n\r\ndata: 1234\n\n", 10),  # blank lines before the event are not part of it either
    ],
)
def test_event_size_does_not_depend_on_chunking(stream: bytes, size: int) -> None:
    # The limit is on the event's lines (field names and the line ends between them), wherever the network
    # cuts the stream; blank lines around it are separators.
    for cut in range(len(stream) + 1):
        d = SSEDecoder(max_event_bytes=size)
        assert len(d.feed(stream[:cut]) + d.feed(stream[cut:])) == 1, cut
        d = SSEDecoder(max_event_bytes=size - 1)
        with pytest.raises(LimitError):
            [ev for chunk in (stream[:cut], stream[cut:]) for ev in d.feed(chunk)]
