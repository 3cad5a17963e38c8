"""Validation of channel URLs and sequence numbers, shared by the publisher and the subscriber."""

from __future__ import annotations

import httpx

from livepeer.trickle._errors import TrickleInvalidInput

__all__ = ["channel_url", "check_seq", "segment_url"]


def channel_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise ``TrickleInvalidInput`` if it is no channel URL."""
    if not isinstance(url, str) or not url.strip():
        raise TrickleInvalidInput(f"channel URL must be a non-empty string, got {url!r}")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise TrickleInvalidInput(f"malformed channel URL {url!r}: {exc}", url=url) from exc
    if parsed.scheme not in ("http", "https"):
        raise TrickleInvalidInput(f"channel URL must be http(s), got {url!r}", url=url)
    if not parsed.host:
        raise TrickleInvalidInput(f"channel URL has no host: {url!r}", url=url)
    if parsed.query or parsed.fragment:
        raise TrickleInvalidInput(
            f"channel URL must not carry a query or fragment: {url!r}", url=url
        )
    path = parsed.path.rstrip("/")
    if not path or path.rsplit("/", 1)[-1] == "":
        raise TrickleInvalidInput(f"channel URL has no channel name: {url!r}", url=url)
    return str(parsed.copy_with(path=path))


def check_seq(seq: int, *, lowest: int) -> int:
    """Return ``seq`` if it is an int not below ``lowest`` (-1 for publishers, -2 for subscribers)."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TrickleInvalidInput(f"sequence number must be an int, got {seq!r}")
    if seq < lowest:
        raise TrickleInvalidInput(f"sequence number {seq} is below {lowest}")
    return seq


def segment_url(channel: str, seq: int | str) -> str:
    return f"{channel}/{seq}"
