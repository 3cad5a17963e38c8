"""Candidate orchestrators: explicit URLs, a discovery URL, or the signer's ``/discover-orchestrators``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import limits
from ._config import Settings, join_path, normalize_url
from ._errors import ConfigError, ConnectionError, ProtocolError, Rejection, TimeoutError
from ._json import loads
from ._ops import Call, Op, request
from ._redact import redact_url

__all__ = ["Candidate", "discover", "parse_discovery"]

DISCOVERY_TIMEOUT = 5.0


@dataclass(frozen=True)
class Candidate:
    """An orchestrator and what discovery said about it (empty when it was given explicitly)."""

    url: str
    capabilities: tuple[str, ...] = ()
    runners: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)
    source: str = "orch_url"


def parse_discovery(body: bytes, source: str) -> list[Candidate]:
    """Parse the signer discovery shape ``[{address, capabilities, runners}]``."""
    data = loads(body, f"{source} reply")
    if not isinstance(data, list):
        raise ProtocolError(f"{source} did not return a JSON array")
    out: list[Candidate] = []
    seen: set[str] = set()
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("address"), str):
            continue
        try:
            url = normalize_url(item["address"])
        except ConfigError:
            continue
        if url in seen:
            continue
        seen.add(url)
        caps = item.get("capabilities") or []
        runners = item.get("runners") or []
        out.append(
            Candidate(
                url,
                tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else (),
                tuple(r for r in runners if isinstance(r, dict))
                if isinstance(runners, list)
                else (),
                source,
            )
        )
    return out


def discover(settings: Settings) -> Op[tuple[list[Candidate], list[Rejection]]]:
    """Explicit orchestrators win; else the discovery URL; else the signer's discovery endpoint."""
    if settings.orchestrators:
        return [Candidate(u) for u in settings.orchestrators], []
    sources: list[tuple[str, Mapping[str, str], str]] = []
    if settings.discovery_url:
        sources.append((settings.discovery_url, settings.discovery_headers, "discovery"))
    if settings.signer_url:
        sources.append(
            (
                join_path(settings.signer_url, "/discover-orchestrators"),
                settings.signer_headers,
                "signer discovery",
            )
        )
    if not sources:
        raise ConfigError(
            "no orchestrators configured: pass orch_url=, discovery_url=, signer_url= or token=, "
            "or set LIVEPEER_ORCH_URL / LIVEPEER_DISCOVERY_URL / LIVEPEER_SIGNER_URL / LIVEPEER_TOKEN"
        )
    rejections: list[Rejection] = []
    for url, headers, label in sources:
        where = redact_url(url) or label
        try:
            reply = yield from request(
                Call(
                    "GET",
                    url,
                    headers=headers,
                    timeout=DISCOVERY_TIMEOUT,
                    service=True,
                    limit=limits.MAX_PROBE_BYTES,
                )
            )
        except (ConnectionError, TimeoutError) as exc:
            rejections.append(Rejection(where, f"{label} unreachable: {exc}"))
            continue
        if reply.status != 200:
            rejections.append(Rejection(where, f"{label} answered {reply.status}"))
            continue
        try:
            found = parse_discovery(reply.body, label)
        except ProtocolError as exc:
            rejections.append(Rejection(where, str(exc)))
            continue
        if found:
            return found, rejections
        rejections.append(Rejection(where, f"{label} listed no orchestrators"))
    return [], rejections
