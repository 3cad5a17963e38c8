"""Route-table facts and URL rules the mutation run (scripts/mutate.py routes) found unpinned."""

from __future__ import annotations

import pytest

from livepeer.client import ConnectionError
from livepeer.client._ops import Deadline
from livepeer.client._routes import (
    BUILTIN_PIPELINES,
    BYOC_CAPABILITY_ID,
    Probe,
    Request,
    body_fields,
    safe_url,
    same_host,
)


def test_capability_ids_are_go_livepeers() -> None:
    # go-livepeer core/capabilities.go:81-91 (at 176aa415): Capability_TextToImage = 27 ... Capability_BYOC = 37.
    assert dict(BUILTIN_PIPELINES) == {
        "text-to-image": 27,
        "image-to-image": 28,
        "image-to-video": 29,
        "upscale": 30,
        "audio-to-text": 31,
        "segment-anything-2": 32,
        "llm": 33,
        "image-to-text": 34,
        "live-video-to-video": 35,
        "text-to-speech": 36,
    }
    assert BYOC_CAPABILITY_ID == 37


def test_probe_and_request_defaults() -> None:
    p = Probe("https://o:1", "byoc", ok=True)
    assert (p.price, p.latency, p.capacity, p.reachable, p.offers, p.reason) == (
        0.0,
        0.0,
        None,
        True,
        None,
        "",
    )
    assert Request("cap", None, None, "rid", Deadline(1)).stream is False


@pytest.mark.parametrize(
    ("url", "orch", "same"),
    [
        ("https://o.example:1/x", "https://o.example:2", True),
        ("https://a.o.example/x", "https://o.example", True),
        ("https://evilo.example/x", "https://o.example", False),
        ("https://o.example.evil/x", "https://o.example", False),
        ("https://O.Example/x", "https://o.example", True),
        ("/relative", "https://o.example", False),
        ("https://x", "not a url", False),
    ],
)
def test_same_host(url: str, orch: str, same: bool) -> None:
    assert same_host(url, orch) is same


def test_safe_url() -> None:
    assert safe_url("/apps/x", "https://o.example:8935") == "https://o.example:8935/apps/x"
    assert safe_url("https://a.o.example/y", "https://o.example") == "https://a.o.example/y"
    for bad in (
        "ftp://o.example/x",
        "https://evil.example/x",
        "//evil.example/x",
        "file:///etc/passwd",
    ):
        with pytest.raises(ConnectionError, match="another host"):
            safe_url(bad, "https://o.example")


def test_body_fields() -> None:
    assert body_fields(None) == {"json": {}}
    assert body_fields({"a": 1}) == {"json": {"a": 1}}


def test_downgrades() -> None:
    from livepeer.client._routes import downgrades

    assert downgrades("http://o.example/x", "https://o.example")
    assert not downgrades("https://o.example/x", "https://o.example")
    assert not downgrades("http://o.example/x", "http://o.example")
    assert not downgrades("https://o.example/x", "http://o.example")
