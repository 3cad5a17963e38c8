"""httpx plumbing shared by the publisher and the subscriber."""

from __future__ import annotations

import httpx

from livepeer.trickle._errors import TrickleProtocolError

__all__ = ["USER_AGENT", "int_header", "new_client", "request_timeout"]

# Identifies our traffic in orchestrator logs (and lets tests tell our clients from anyone else's).
USER_AGENT = "livepeer-trickle/0.1.0"


def new_client(*, verify: bool) -> httpx.AsyncClient:
    # Orchestrators serve trickle over TLS with self-signed certificates (PROTOCOL §9), hence verify=False
    # by default at the call sites. Timeouts are set per request: trickle requests may legitimately wait
    # a long time for their first byte, so the waits are bounded by our own scopes, not by httpx.
    return httpx.AsyncClient(
        verify=verify,
        timeout=httpx.Timeout(None),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


def request_timeout(connect: float) -> httpx.Timeout:
    return httpx.Timeout(connect=connect, read=None, write=None, pool=connect)


def int_header(response: httpx.Response, name: str) -> int | None:
    """Parse an integer header; a present but malformed value is a protocol error."""
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise TrickleProtocolError(
            f"malformed {name} header {value!r}",
            url=str(response.request.url),
            status_code=response.status_code,
        ) from None
