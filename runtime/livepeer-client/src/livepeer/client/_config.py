"""Gateway settings: explicit kwargs > config token > ``LIVEPEER_*`` environment variables.

livepeer-gateway 1.0.0 resolves every field *token first*; we let an explicit argument win because a
value typed at the call site is the most specific intent (a token is usually shared, copied config).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ._errors import ConfigError
from ._redact import redact_url
from ._validate import (
    check_count,
    check_headers,
    check_price,
    check_seconds,
    check_strings,
    did_you_mean,
)

__all__ = [
    "Settings",
    "TokenConfig",
    "join_path",
    "normalize_url",
    "parse_token",
    "resolve",
    "split_url",
]

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
ENV_TOKEN = "LIVEPEER_TOKEN"
ENV_SIGNER = "LIVEPEER_SIGNER_URL"
ENV_DISCOVERY = "LIVEPEER_DISCOVERY_URL"
ENV_ORCH = "LIVEPEER_ORCH_URL"
ENV_PRIVATE_KEY = "LIVEPEER_PRIVATE_KEY"
TOKEN_FIELDS = ("orchestrators", "signer", "signer_headers", "discovery", "discovery_headers")
# A real token is a few hundred bytes (a dozen orchestrator URLs and a header or two); 64 KiB leaves room
# for long discovery lists while refusing a pasted file, and json.loads never sees megabytes of nesting.
MAX_TOKEN = 64 << 10
_HEX_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")
log = logging.getLogger("livepeer.client")


@dataclass(frozen=True)
class TokenConfig:
    """The fields of a base64 JSON configuration token (all optional)."""

    orchestrators: tuple[str, ...] = ()
    signer: str | None = None
    signer_headers: Mapping[str, str] | None = None
    discovery: str | None = None
    discovery_headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; ``repr`` never shows secrets."""

    orchestrators: tuple[str, ...] = ()
    signer_url: str | None = None
    signer_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    discovery_url: str | None = None
    discovery_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    max_price: float | None = None
    private_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        parts = [
            f"orchestrators={[redact_url(u) for u in self.orchestrators]!r}",
            f"signer_url={redact_url(self.signer_url)!r}",
            f"signer_headers={sorted(self.signer_headers)!r}",
            f"discovery_url={redact_url(self.discovery_url)!r}",
            f"discovery_headers={sorted(self.discovery_headers)!r}",
            f"timeout={self.timeout!r}",
            f"max_retries={self.max_retries!r}",
            f"max_price={self.max_price!r}",
            f"local_key={'set' if self.private_key else 'unset'}",
        ]
        return f"Settings({', '.join(parts)})"


def normalize_url(url: str) -> str:
    """``host:port`` → ``https://host:port``; trailing slashes dropped; paths kept (signers may live under one)."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    parts = split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not an http(s) URL: {redact_url(url)!r}")
    return url.rstrip("/")


def split_url(url: str) -> SplitResult | None:
    """``urlsplit(url)``, or None for a URL Python (and so httpx) cannot use: an unclosed "[" makes
    urlsplit raise, and a port that is not a number in 0-65535 raises only when ``.port`` is read, which
    for a configured URL used to be the first request."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - read for its ValueError
    except ValueError:
        return None
    return parts


def join_path(base: str, path: str) -> str:
    """``base`` + ``path``, keeping a query string (signer credentials sometimes live there) last."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


def _headers(value: object, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"token field {name!r} must be an object mapping strings to strings")
    return dict(value)


def _url_field(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"token field {name!r} must be a non-empty URL string")
    try:
        return normalize_url(value)
    except ConfigError:
        raise ConfigError(f"token field {name!r} is not an http(s) URL") from None


def split_orchestrators(value: object, name: str) -> tuple[str, ...]:
    """Accept a list of URLs or one comma-separated string; empty entries are dropped."""
    items: list[object]
    if isinstance(value, str):
        items = list(value.split(","))
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"{name} must be a list of URLs or a comma-separated string")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{name} must contain only strings")
        if item.strip():
            try:
                out.append(normalize_url(item))
            except ConfigError:
                raise ConfigError(f"{name} holds something that is not an http(s) URL") from None
    return tuple(out)


def parse_token(token: str) -> TokenConfig:
    """Decode a config token: strict base64 of a UTF-8 JSON object. Errors name the bad field.

    A misspelled field (close to a known one) is an error with a suggestion; other unknown fields are
    ignored with a warning, as livepeer-gateway 1.0.0 ignores them, so newer tokens keep working.
    """
    if not isinstance(token, str):
        raise ConfigError(f"token must be a string, not {type(token).__name__}")
    if len(token) > MAX_TOKEN:
        raise ConfigError(
            f"token is {len(token)} characters long; a config token is at most {MAX_TOKEN}"
        )
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("token is not valid base64") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError("token does not decode to UTF-8 JSON") from None
    except RecursionError:
        raise ConfigError("token nests too deeply to be a config token") from None
    if not isinstance(data, dict):
        raise ConfigError("token must hold a JSON object")
    unknown = sorted(k for k in data if k not in TOKEN_FIELDS)
    for key in unknown:
        hint = did_you_mean(key, TOKEN_FIELDS)
        if hint:
            raise ConfigError(
                f"token has an unknown field {key[:40]!r}{hint}; known fields: {', '.join(TOKEN_FIELDS)}"
            )
    if unknown:
        log.warning("token fields ignored (unknown): %s", ", ".join(repr(k[:40]) for k in unknown))
    orchs: tuple[str, ...] = ()
    if data.get("orchestrators") is not None:
        value = data["orchestrators"]
        if isinstance(value, list) and any(not isinstance(v, str) or not v.strip() for v in value):
            raise ConfigError("token field 'orchestrators' must be an array of non-empty strings")
        orchs = split_orchestrators(value, "token field 'orchestrators'")
    return TokenConfig(
        orchestrators=orchs,
        signer=_url_field(data["signer"], "signer") if data.get("signer") is not None else None,
        signer_headers=_headers(data["signer_headers"], "signer_headers")
        if data.get("signer_headers") is not None
        else None,
        discovery=_url_field(data["discovery"], "discovery")
        if data.get("discovery") is not None
        else None,
        discovery_headers=_headers(data["discovery_headers"], "discovery_headers")
        if data.get("discovery_headers") is not None
        else None,
    )


def _env_url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return normalize_url(value)
    except ConfigError:
        raise ConfigError(f"environment variable {name} is not an http(s) URL") from None


def resolve(
    *,
    token: str | None = None,
    signer_url: str | None = None,
    signer_headers: Mapping[str, str] | None = None,
    discovery_url: str | None = None,
    discovery_headers: Mapping[str, str] | None = None,
    orch_url: str | Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_price: float | None = None,
    private_key: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge kwargs, token and environment into ``Settings`` (kwargs > token > env)."""
    env = os.environ if env is None else env
    # Types and values first, before anything is parsed or contacted; messages name the argument.
    check_seconds(timeout, "timeout", config=True)
    check_count(max_retries, "max_retries")
    check_price(max_price, "max_price")
    check_headers(signer_headers, "signer_headers")
    check_headers(discovery_headers, "discovery_headers")
    orch_arg = check_strings(orch_url, "orch_url")
    for value, name in ((signer_url, "signer_url"), (discovery_url, "discovery_url")):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a URL string, not {type(value).__name__}")
    if private_key is not None and not isinstance(private_key, str):
        raise ConfigError(f"private_key must be a hex string, not {type(private_key).__name__}")
    if token is None and env.get(ENV_TOKEN, "").strip():
        try:
            tok = parse_token(env[ENV_TOKEN])
        except ConfigError as exc:
            raise ConfigError(f"environment variable {ENV_TOKEN}: {exc}") from None
    else:
        tok = parse_token(token) if token is not None else TokenConfig()

    orchestrators: tuple[str, ...] = ()
    if orch_arg is not None:
        orchestrators = split_orchestrators(orch_arg, "orch_url")
    if not orchestrators:
        orchestrators = tok.orchestrators
    if not orchestrators and env.get(ENV_ORCH, "").strip():
        orchestrators = split_orchestrators(env[ENV_ORCH], f"environment variable {ENV_ORCH}")

    signer = (
        _kw_url(signer_url, "signer_url") if signer_url else tok.signer or _env_url(env, ENV_SIGNER)
    )
    discovery = (
        _kw_url(discovery_url, "discovery_url")
        if discovery_url
        else tok.discovery or _env_url(env, ENV_DISCOVERY)
    )
    key = private_key or env.get(ENV_PRIVATE_KEY) or None
    if key is not None and not _HEX_KEY.fullmatch(key.strip()):
        where = "private_key" if private_key else f"environment variable {ENV_PRIVATE_KEY}"
        raise ConfigError(f"{where} must be 32 bytes as hex (64 hex digits, optional 0x)")
    if not orchestrators and not signer and not discovery:
        raise ConfigError(
            "no orchestrators configured: pass token= (from the dashboard, or `livepeer devnet`), "
            "orch_url=, discovery_url= or signer_url=, or set LIVEPEER_TOKEN / LIVEPEER_ORCH_URL / "
            "LIVEPEER_DISCOVERY_URL / LIVEPEER_SIGNER_URL"
        )
    return Settings(
        orchestrators=orchestrators,
        signer_url=signer,
        signer_headers=dict(
            signer_headers if signer_headers is not None else tok.signer_headers or {}
        ),
        discovery_url=discovery,
        discovery_headers=dict(
            discovery_headers if discovery_headers is not None else tok.discovery_headers or {}
        ),
        timeout=float(timeout),
        max_retries=max_retries,
        max_price=max_price,
        private_key=key.strip() if key else None,
    )


def _kw_url(value: str, name: str) -> str:
    try:
        return normalize_url(value)
    except ConfigError:
        raise ConfigError(f"{name} is not an http(s) URL") from None
