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
    # URLs Python cannot parse: refused as malformed (they used to escape as ValueError), and the
    # orchestrator's own credentials stay out of the message.
    for bad in (
        "https://[",
        "http://[::1",
        "https://o.example:99999/x",
        "https://o.example:p/x",
    ):
        with pytest.raises(ConnectionError, match="malformed URL") as info:
            safe_url(bad, "https://user:pw@o.example?key=s3cret")
        assert "pw" not in str(info.value)
        assert "s3cret" not in str(info.value)
        assert "https://o.example?<redacted> handed back" in str(info.value)
    assert not same_host("https://o.example:99999/x", "https://o.example")
    assert not same_host("https://o.example/x", "https://o.example:99999")
    assert not same_host("https://[/x", "https://o.example")
    assert same_host("https://o.example:65535/x", "https://o.example:0")


def test_body_fields() -> None:
    assert body_fields(None) == {"json": {}}
    assert body_fields({"a": 1}) == {"json": {"a": 1}}


def test_downgrades() -> None:
    from livepeer.client._routes import downgrades

    assert downgrades("http://o.example/x", "https://o.example")
    assert not downgrades("https://o.example/x", "https://o.example")
    assert not downgrades("http://o.example/x", "http://o.example")
    assert not downgrades("https://o.example/x", "http://o.example")


def test_routes_for_orders_the_routes_a_name_may_use() -> None:
    from livepeer.client._routes import ROUTES, route_kind, routes_for

    def kinds(capability: str, route: str | None) -> list[str]:
        return [r.kind for r in routes_for(capability, route)]

    assert {name: r.kind for name, r in ROUTES.items()} == {
        "ai": "ai",
        "byoc": "byoc",
        "apps": "apps",
    }
    assert kinds("text-to-image", None) == ["ai"]
    assert kinds("text-to-image", "app") == [
        "ai"
    ]  # a built-in pipeline has one route whatever is asked
    assert kinds("text-reversal", None) == ["byoc", "apps"]  # BYOC first, then a live-runner app
    assert kinds("text-reversal", "byoc") == ["byoc"]
    assert kinds("text-reversal", "app") == ["apps"]
    assert route_kind("llm") == "ai"
    assert route_kind("text-reversal") == "byoc"


def test_route_records_are_frozen_and_probes_not_pending_by_default() -> None:
    import dataclasses

    from livepeer.client._route import LiveRequest, Offering

    live = LiveRequest("c", None, {}, "r", "s")
    offer = Offering("c", "https://o:1", "byoc")
    for record in (live, offer):
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.capability = "other"  # type: ignore[misc]
    assert Probe("https://o:1", "byoc", ok=True).pending is False


def test_failed_reply_moves_on_or_stops_with_the_request_named() -> None:
    from livepeer.client import APIStatusError
    from livepeer.client._ops import Reply
    from livepeer.client._route import failed_reply, reply_text

    probe = Probe("https://o:1", "byoc", ok=True)
    moved = failed_reply(Reply(503, {}, b" busy \n", "u", 0.0), probe, "req-1")
    assert (moved.orchestrator, moved.reason) == ("https://o:1", "HTTP 503: busy")
    with pytest.raises(APIStatusError) as info:
        failed_reply(Reply(404, {}, b"no", "u", 0.0), probe, "req-1")
    assert (info.value.orchestrator, info.value.request_id) == ("https://o:1", "req-1")
    assert reply_text(Reply(500, {}, b"x" * 300, "u", 0.0)) == "x" * 200


@pytest.mark.parametrize("path", ["a/./b", "a/../b", ".", "..", "a//b"])
def test_check_path_refuses_dot_segments(path: str) -> None:
    from livepeer.client import ConfigError
    from livepeer.client._route import check_path

    with pytest.raises(ConfigError, match="cannot reach the worker"):
        check_path("text-reversal", path)
    check_path("text-reversal", "a.b/c..d")  # dots inside a segment are fine


def test_request_url_keeps_segment_safe_characters() -> None:
    from livepeer.client._route import request_url

    assert request_url("https://o:1", "a:b@c/x y") == "https://o:1/process/request/a:b@c/x%20y"


def test_post_tickets_sends_both_headers_and_refuses_anything_but_200() -> None:
    from livepeer.client import PaymentError
    from livepeer.client._ops import Call, Reply
    from livepeer.client._route import post_tickets
    from livepeer.client._signer import PaymentTokens

    url = "https://o.example/live/payment"
    tokens = PaymentTokens("PAYMENT", "SEGMENT")

    def start() -> tuple[object, Call]:
        op = post_tickets(
            url, tokens, orchestrator="https://o.example", what="LV2V tickets", timeout=7.5
        )
        call = next(op)
        assert isinstance(call, Call)
        return op, call

    op, call = start()
    assert (call.method, call.url, call.timeout, call.limit) == ("POST", url, 7.5, 1 << 20)
    assert call.headers == {"Livepeer-Payment": "PAYMENT", "Livepeer-Segment": "SEGMENT"}
    ok = Reply(200, {}, b"", url, 0.0)
    with pytest.raises(StopIteration) as done:
        op.send(ok)  # type: ignore[attr-defined]
    assert done.value.value is ok
    for status in (201, 402, 500):
        op, _ = start()
        with pytest.raises(PaymentError) as refused:
            op.send(Reply(status, {}, b" insufficient balance \n", url, 0.0))  # type: ignore[attr-defined]
        assert str(refused.value) == (
            f"https://o.example refused LV2V tickets ({status}): insufficient balance"
        )
