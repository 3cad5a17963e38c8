"""What every request shape (route) shares: the ``Route`` protocol, the request and probe records, and the
URL rules that confine an orchestrator's answers to its own host (DESIGN §1; docs/architecture.md)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import quote, urljoin, urlsplit

from livepeer.client._config import split_url
from livepeer.client._errors import (
    APIStatusError,
    ConfigError,
    ConnectionError,
    LivepeerError,
    PaymentError,
    Rejection,
)
from livepeer.client._files import has_files, multipart_body
from livepeer.client._ops import Call, Deadline, InfoCall, Op, Reply, is_retryable_status, request
from livepeer.client._redact import redact_url

if TYPE_CHECKING:
    from livepeer.client._files import FileOutput
    from livepeer.client._live._session import LiveChannels, LiveJob
    from livepeer.client._signer import Identity, PaymentTokens, Signer

__all__ = [
    "BUILTIN_PIPELINES",
    "BYOC_CAPABILITY_ID",
    "LiveIO",
    "LiveRequest",
    "LiveStart",
    "Offering",
    "Probe",
    "Request",
    "Route",
    "RouteDefaults",
    "RouteName",
    "body_fields",
    "check_path",
    "downgrades",
    "failed_reply",
    "post_tickets",
    "reply_text",
    "request_url",
    "safe_url",
    "same_host",
]

T = TypeVar("T")

# The public ``livepeer.client.Route``: force a route for a name offered both ways (docs/client.md "Routing").
RouteName = Literal["byoc", "app"]

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
    pending: bool = (
        False  # a placeholder: the probe still runs in the background (first good answer wins)
    )


@dataclass(frozen=True)
class LiveRequest:
    """One ``gw.live`` start, as the routes see it."""

    capability: str
    model: str | None
    params: Mapping[str, object]
    request_id: str
    stream_id: str


# A started live job: its channel URLs, the job (payments, update, stop) and the start reply.
LiveStart = tuple["LiveChannels", "LiveJob", Mapping[str, object]]


@dataclass(frozen=True)
class Offering:
    """One capability an orchestrator offers: ``livepeer capabilities`` prints these.

    ``route`` is ``byoc``, ``ai`` (built-in pipeline) or ``app`` (live-runner app); ``price_per_unit`` is in
    wei per ``unit`` (``wei/second``, ``wei/pixel``, ``wei/720p-pixel-second``, ``wei/session``), ``None``
    when the orchestrator did not say; ``capacity`` is free capacity when known.
    """

    capability: str
    orchestrator: str
    route: str
    price_per_unit: float | None = None
    unit: str | None = None
    capacity: int | None = None


class Route(Protocol):
    """One request shape (built-in AI pipeline, BYOC capability, live-runner app), batch and live halves.

    The dispatcher owns the policy (candidates, parallel probes, ranking, failover, retries, signer refresh);
    a route only knows its own wire: how to probe an orchestrator, what the probe means, how to send one
    request, what a failed reply of its own means, and how to start a live job. Shaped like httpx's
    one-method transport: everything is a sans-IO op, so sync and async share it.
    """

    kind: str  # "ai" | "byoc" | "apps": Probe.kind, the span's livepeer.route
    # The `route=` value that pins this route when an orchestrator is probed again (None: by name).
    pin: str | None
    # A request can go out before any probe when nothing is paid (BYOC offchain needs no JobToken; an
    # AI request needs the orchestrator's auth token, an app its runner URL).
    probe_free: bool

    def probe_call(
        self, url: str, capability: str, model: str | None, ident: Identity, timeout: float
    ) -> Call | InfoCall:
        """The request that asks one orchestrator about ``capability``."""
        ...

    def read_probe(
        self, url: str, capability: str, model: str | None, result: Reply | LivepeerError
    ) -> Probe:
        """What that request's answer (or failure) says: price, capacity, payment state."""
        ...

    def attempt(
        self, signer: Signer, ident: Identity, probe: Probe, req: Request, *, force_payment: bool
    ) -> Op[Reply]:
        """Send one request to the probed orchestrator (paying as the route pays)."""
        ...

    def classify(
        self, reply: Reply, probe: Probe, req: Request, *, repaid: bool
    ) -> str | Rejection | None:
        """A route's own reading of an error reply: ``"repay"`` (pay once more and resend), a
        ``Rejection`` (move on), or None for the common rules (``failed_reply``). May raise."""
        ...

    def result(
        self,
        capability: str,
        ctype: str,
        value: object,
        probe: Probe,
        media: Callable[[str], FileOutput],
    ) -> object:
        """The decoded reply (``value``: parsed JSON, or None for a non-JSON body) as the verb returns
        it, after the route's own checks; ``media`` turns a media URL of the reply into a ``FileOutput``."""
        ...

    def offerings(self, url: str, reply: Reply) -> list[Offering]:
        """Rows for ``list_capabilities`` from this route's listing reply (``listing_call``)."""
        ...

    def listing_call(self, url: str, ident: Identity, timeout: float) -> Call | InfoCall | None:
        """The request that lists what an orchestrator offers on this route (None: no own listing)."""
        ...

    def start_live(
        self, io: LiveIO, ident: Identity, probe: Probe, live: LiveRequest, deadline: Deadline
    ) -> Op[LiveStart | Rejection]:
        """Start a live job on the probed orchestrator, or say why not (the dispatcher fails over)."""
        ...


class RouteDefaults:
    """What a route does where it has nothing of its own: no reply classification (the common rules),
    the decoded value as is, no listing of its own. Routes inherit these and override what they have."""

    @staticmethod
    def classify(
        reply: Reply, probe: Probe, req: Request, *, repaid: bool
    ) -> str | Rejection | None:
        return None

    @staticmethod
    def result(
        capability: str, ctype: str, value: object, probe: Probe, media: Callable[[str], FileOutput]
    ) -> object:
        return value

    @staticmethod
    def listing_call(url: str, ident: Identity, timeout: float) -> Call | InfoCall | None:
        return None

    @staticmethod
    def offerings(url: str, reply: Reply) -> list[Offering]:
        return []


class LiveIO(Protocol):
    """What a running live job needs of the dispatcher: the signer and async I/O (never the Gateway)."""

    @property
    def signer(self) -> Signer: ...

    async def arun(self, op: Op[T]) -> T:
        """Drive ``op`` with the dispatcher's async I/O."""
        ...


def reply_text(reply: Reply, limit: int = 200) -> str:
    """The start of an error reply's body, for messages (bounded, never raises)."""
    return reply.body[:limit].decode("utf-8", "replace").strip()


def post_tickets(
    url: str, tokens: PaymentTokens, *, orchestrator: str, what: str, timeout: float
) -> Op[Reply]:
    """POST a live job's tickets to its payment URL (LV2V ``/payment``, an app session's ``payment_url``);
    anything but 200 ends the session with ``PaymentError`` naming ``what`` was refused."""
    reply = yield from request(
        Call(
            "POST",
            url,
            headers={"Livepeer-Payment": tokens.payment, "Livepeer-Segment": tokens.seg_creds},
            timeout=timeout,
            limit=1 << 20,
        )
    )
    if reply.status != 200:
        raise PaymentError(f"{orchestrator} refused {what} ({reply.status}): {reply_text(reply)}")
    return reply


def failed_reply(reply: Reply, probe: Probe, request_id: str) -> Rejection:
    """The common rule for a reply that did not succeed: move on (5xx, 408, 429, capacity 503), or stop
    with ``APIStatusError`` (any other 4xx: the request itself is wrong, another orchestrator won't help)."""
    if is_retryable_status(reply.status):
        return Rejection(probe.url, f"HTTP {reply.status}: {reply_text(reply)}")
    raise APIStatusError(reply.status, reply.body, orchestrator=probe.url, request_id=request_id)


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
    """True when ``url`` is a usable URL on the orchestrator's host or a subdomain of it."""
    parts, orch = split_url(url), split_url(orchestrator)
    if parts is None or orch is None:
        return False
    host = (parts.hostname or "").lower()
    base = (orch.hostname or "").lower()
    return bool(host) and (host == base or host.endswith("." + base))


def downgrades(url: str, orchestrator: str) -> bool:
    """True for an http URL from an https orchestrator (never followed: it would drop TLS)."""
    return urlsplit(orchestrator).scheme == "https" and urlsplit(url).scheme != "https"


def safe_url(url: str, orchestrator: str) -> str:
    """Resolve ``url`` against the orchestrator; refuse URLs pointing anywhere else (docs/reliability.md)."""
    where = redact_url(orchestrator)
    full: str | None
    try:
        full = urljoin(orchestrator + "/", url)
    except ValueError:  # urljoin splits both: an unclosed "[" raises
        full = None
    parts = None if full is None else split_url(full)
    if full is None or parts is None:
        raise ConnectionError(f"orchestrator {where} handed back a malformed URL; refusing it")
    if parts.scheme not in ("http", "https") or not same_host(full, orchestrator):
        raise ConnectionError(
            f"orchestrator {where} handed back a URL on another host; refusing to follow it"
        )
    if downgrades(full, orchestrator):
        raise ConnectionError(
            f"orchestrator {where} handed back a plain-http URL; refusing the downgrade"
        )
    return full
