"""Keeping secrets out of logs, errors and reprs.

Two layers:
- what we log ourselves shows header *values* only for an allow-list of harmless headers, and URLs without
  user info or query string (``redact_url``);
- every record of the loggers our requests pass through (ours, httpx's, httpcore's, hpack's) is scrubbed:
  any configured secret (header values the caller gave us, URL credentials and query values), raw or
  base64-encoded, becomes ``<redacted>``, and so does every URL query string and user info. httpx logs each
  request's full URL at INFO, httpcore logs response headers (``Set-Cookie``) at DEBUG: filtering those
  loggers is the only way to reach text we do not format ourselves.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = [
    "SAFE_HEADERS",
    "headers_secrets",
    "redact_headers",
    "redact_url",
    "register_secrets",
    "scrub",
    "secrets_of_url",
]

# Header values that may be logged; everything else (Authorization, cookies, Livepeer, Livepeer-Payment,
# Livepeer-Segment, Livepeer-Eth-Address, any header the caller configured) shows as <redacted>.
SAFE_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "content-type",
        "content-length",
        "livepeer-capability",
        "user-agent",
        "x-request-id",
    }
)
REDACTED = "<redacted>"
MIN_SECRET = 4  # shorter values would blank out ordinary words
SCRUBBED_LOGGERS = (
    "livepeer",
    "livepeer.client",
    "livepeer.client.live",
    "livepeer.trickle",
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "hpack",
    "hpack.hpack",
    "hpack.table",
)

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Query strings and user info of any http(s) URL in a log line.
# A query already shown as "?<redacted>" (redact_url's output in a message) is left as it is: scrub runs on
# every error's text, and it used to turn that into "?<redacted><redacted>".
_URL_QUERY = re.compile(r"(https?://[^\s\"'<>?#]*)\?(?!<redacted>)[^\s\"'<>#]*")
_URL_USERINFO = re.compile(r"(https?://)[^\s\"'<>/@]+@")
_COOKIE = re.compile(r"((?:set-)?cookie['\"]?\s*[:,=]\s*b?['\"]?)[^'\"\r\n)]+", re.IGNORECASE)


def _variants(value: str) -> Iterable[str]:
    yield value
    raw = value.encode()
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        text = enc(raw).decode()
        yield text
        yield text.rstrip("=")


def register_secrets(values: Iterable[str]) -> None:
    """Remember values that must never appear in a log record (raw or base64-encoded)."""
    global _pattern
    _install()
    fresh = {v for value in values if len(value) >= MIN_SECRET for v in _variants(value)}
    with _lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def secrets_of_url(url: str | None) -> list[str]:
    """User info and query values of ``url`` (where signer and discovery credentials hide)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    out = [unquote(parts.username or ""), unquote(parts.password or "")]
    if parts.username is not None:
        out.append(parts.netloc.rsplit("@", 1)[0])
    out += [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    out.append(parts.query)
    return [v for v in out if v]


def headers_secrets(headers: Mapping[str, str] | None) -> list[str]:
    return [v for v in (headers or {}).values() if isinstance(v, str)]


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v if k.lower() in SAFE_HEADERS else REDACTED for k, v in headers.items()}


def scrub(text: str) -> str:
    """``text`` without registered secrets, URL query strings, URL user info or cookie values."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if "://" in text:
        text = _URL_USERINFO.sub(r"\1" + REDACTED + "@", text)
        text = _URL_QUERY.sub(r"\1?" + REDACTED, text)
    if "ookie" in text or "OOKIE" in text:
        text = _COOKIE.sub(r"\1" + REDACTED, text)
    return text


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_filter = _ScrubFilter()
_installed = False


def _install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    for name in SCRUBBED_LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)


def install() -> None:
    """Scrub URL queries and user info from the loggers above even before any secret is registered."""
    _install()


def redact_url(url: str | None) -> str | None:
    """Drop user info and query strings, where credentials hide."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
