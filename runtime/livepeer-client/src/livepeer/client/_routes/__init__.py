"""Request shapes (DESIGN §1): each route knows its endpoints, headers and payment cadence."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from livepeer.client._errors import ConfigError, ConnectionError
from livepeer.client._files import has_files, multipart_body
from livepeer.client._http import Deadline

__all__ = [
    "BUILTIN_PIPELINES",
    "Probe",
    "Request",
    "body_fields",
    "check_path",
    "request_url",
    "safe_url",
    "same_host",
]

# go-livepeer core/capabilities.go ids of the built-in AI pipelines.
BUILTIN_PIPELINES: Mapping[str, int] = {
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
BYOC_CAPABILITY_ID = 37


@dataclass
class Request:
    """One verb invocation, as the routes see it."""

    capability: str
    model: str | None
    input: Mapping[str, object] | None
    request_id: str
    deadline: Deadline
    stream: bool = False
    path: str = ""  # BYOC: path under /process/request/ (the worker sees {capability URL}/{path})


@dataclass
class Probe:
    """What probing one orchestrator for one capability found."""

    url: str
    kind: str  # "ai" | "byoc" | "apps"
    ok: bool
    reason: str = ""
    price: float = 0.0
    latency: float = 0.0
    capacity: int | None = None
    reachable: bool = True
    offers: bool | None = None
    token: Mapping[str, Any] | None = None
    info: bytes | None = None
    runner: Mapping[str, Any] | None = None
    balance: float | None = None
    created: float = field(default_factory=time.monotonic)


# go-livepeer decodes the request path and appends what follows /process/request/ to the worker URL, then
# parses the result as a URL again (byoc/job_orchestrator.go:255-266 at 176aa415): a decoded "?" or "#" would
# cut the path, a "%" would be read as an escape, "." and ".." segments would be resolved by the worker's server.
_UNROUTABLE = re.compile(r"[%?#\x00-\x1f\x7f]")
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


def check_path(capability: str, path: str) -> None:
    """A BYOC path of segments, e.g. ``"items/42"``; what cannot reach the worker is refused before I/O."""
    if not isinstance(path, str):
        raise ConfigError(f"path must be a string, got {type(path).__name__}")
    if not path:
        return
    if capability in BUILTIN_PIPELINES:
        raise ConfigError(f"path={path!r}: built-in AI pipelines have no sub-paths")
    for seg in path.split("/"):
        if not seg or seg in (".", "..") or _UNROUTABLE.search(seg):
            raise ConfigError(
                f"path={path!r}: segment {seg!r} cannot reach the worker (no empty, '.' or '..' "
                "segments, no '%', '?', '#' or control characters)"
            )


def request_url(base: str, path: str) -> str:
    """``/process/request/`` plus the path, each segment percent-encoded (the orchestrator decodes it)."""
    return (
        base
        + "/process/request/"
        + "/".join(quote(seg, safe=_SEGMENT_SAFE) for seg in path.split("/") if seg)
    )


def body_fields(payload: Mapping[str, object] | None) -> dict[str, Any]:
    """Call kwargs for a JSON body, or multipart when the input holds files."""
    if payload is not None and has_files(payload):
        data, files = multipart_body(payload)
        return {"data": data, "files": files}
    return {"json": dict(payload) if payload is not None else {}}


def same_host(url: str, orchestrator: str) -> bool:
    """True when ``url`` is on the orchestrator's host or a subdomain of it."""
    host = (urlsplit(url).hostname or "").lower()
    base = (urlsplit(orchestrator).hostname or "").lower()
    return bool(host) and (host == base or host.endswith("." + base))


def downgrades(url: str, orchestrator: str) -> bool:
    """True for an http URL from an https orchestrator (never followed: it would drop TLS)."""
    return urlsplit(orchestrator).scheme == "https" and urlsplit(url).scheme != "https"


def safe_url(url: str, orchestrator: str) -> str:
    """Resolve ``url`` against the orchestrator; refuse URLs pointing anywhere else (docs/reliability.md)."""
    full = urljoin(orchestrator + "/", url)
    if urlsplit(full).scheme not in ("http", "https") or not same_host(full, orchestrator):
        raise ConnectionError(
            f"orchestrator {orchestrator} handed back a URL on another host; refusing to follow it"
        )
    if downgrades(full, orchestrator):
        raise ConnectionError(
            f"orchestrator {orchestrator} handed back a plain-http URL; refusing the downgrade"
        )
    return full
