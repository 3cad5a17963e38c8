"""Gateway settings: explicit kwargs > config token > ``LIVEPEER_*`` environment variables.

livepeer-gateway 1.0.0 resolves every field *token first*; we let an explicit argument win because a
value typed at the call site is the most specific intent (a token is usually shared, copied config).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from ._errors import ConfigError

__all__ = [
    "Settings",
    "TokenConfig",
    "join_path",
    "normalize_url",
    "parse_token",
    "redact_url",
    "resolve",
]

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
ENV_TOKEN = "LIVEPEER_TOKEN"
ENV_SIGNER = "LIVEPEER_SIGNER_URL"
ENV_DISCOVERY = "LIVEPEER_DISCOVERY_URL"
ENV_ORCH = "LIVEPEER_ORCH_URL"
ENV_PRIVATE_KEY = "LIVEPEER_PRIVATE_KEY"


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
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not an http(s) URL: {redact_url(url)!r}")
    return url.rstrip("/")


def join_path(base: str, path: str) -> str:
    """``base`` + ``path``, keeping a query string (signer credentials sometimes live there) last."""
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


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
    """Decode a config token: strict base64 of a UTF-8 JSON object. Errors name the bad field."""
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("token is not valid base64") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError("token does not decode to UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise ConfigError("token must hold a JSON object")
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
    orch_url: str | list[str] | tuple[str, ...] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_price: float | None = None,
    private_key: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge kwargs, token and environment into ``Settings`` (kwargs > token > env)."""
    env = os.environ if env is None else env
    if token is None and env.get(ENV_TOKEN, "").strip():
        token = env[ENV_TOKEN]
    tok = parse_token(token) if token is not None else TokenConfig()
    if timeout <= 0:
        raise ConfigError("timeout must be positive")
    if max_retries < 0:
        raise ConfigError("max_retries must be >= 0")
    if max_price is not None and max_price < 0:
        raise ConfigError("max_price must be >= 0")

    orchestrators: tuple[str, ...] = ()
    if orch_url is not None:
        orchestrators = split_orchestrators(orch_url, "orch_url")
    if not orchestrators:
        orchestrators = tok.orchestrators
    if not orchestrators and env.get(ENV_ORCH, "").strip():
        orchestrators = split_orchestrators(env[ENV_ORCH], f"environment variable {ENV_ORCH}")

    signer = normalize_url(signer_url) if signer_url else tok.signer or _env_url(env, ENV_SIGNER)
    discovery = (
        normalize_url(discovery_url)
        if discovery_url
        else tok.discovery or _env_url(env, ENV_DISCOVERY)
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
        private_key=private_key or env.get(ENV_PRIVATE_KEY) or None,
    )
