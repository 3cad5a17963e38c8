from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livepeer.client import ConfigError, Gateway
from livepeer.client._config import parse_token, redact_url, resolve


def test_token_fields_are_parsed(token_factory: Callable[..., str]) -> None:
    tok = parse_token(
        token_factory(
            orchestrators=["orch.example:8935", "https://b.example:1"],
            signer="http://127.0.0.1:9000/",
            signer_headers={"Authorization": "Bearer s3cret"},
            discovery="https://disc.example/list",
        )
    )
    assert tok.orchestrators == ("https://orch.example:8935", "https://b.example:1")
    assert tok.signer == "http://127.0.0.1:9000"
    assert tok.signer_headers == {"Authorization": "Bearer s3cret"}
    assert tok.discovery == "https://disc.example/list"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"orchestrators": "x"}, None),
        ({"orchestrators": [""]}, "orchestrators"),
        ({"orchestrators": [1]}, "orchestrators"),
        ({"signer": 5}, "signer"),
        ({"signer": "ftp://x"}, "signer"),
        ({"signer_headers": {"a": 1}}, "signer_headers"),
        ({"signer_headers": "x"}, "signer_headers"),
        ({"discovery": ""}, "discovery"),
        ({"discovery_headers": []}, "discovery_headers"),
    ],
)
def test_token_errors_name_the_field(
    token_factory: Callable[..., str], fields: dict[str, object], needle: str | None
) -> None:
    if needle is None:
        # A comma-separated string is accepted for orchestrators (as py-1.0 does).
        assert parse_token(token_factory(**fields)).orchestrators == ("https://x",)
        return
    with pytest.raises(ConfigError) as info:
        parse_token(token_factory(**fields))
    assert repr(needle) in str(info.value)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [("not base64!!", "base64"), ("/w==", "UTF-8 JSON"), ("WzFd", "JSON object")],
)
def test_malformed_tokens(raw: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_token(raw)


def test_precedence_kwargs_over_token_over_env(token_factory: Callable[..., str]) -> None:
    env = {
        "LIVEPEER_SIGNER_URL": "http://env-signer",
        "LIVEPEER_DISCOVERY_URL": "http://env-disc",
        "LIVEPEER_ORCH_URL": "env-orch:1,env-orch:2",
    }
    token = token_factory(signer="http://tok-signer", orchestrators=["tok-orch:1"])
    s = resolve(env=env)
    assert (s.signer_url, s.discovery_url) == ("http://env-signer", "http://env-disc")
    assert s.orchestrators == ("https://env-orch:1", "https://env-orch:2")
    s = resolve(token=token, env=env)
    assert s.signer_url == "http://tok-signer"
    assert s.orchestrators == ("https://tok-orch:1",)
    assert s.discovery_url == "http://env-disc"  # the token has no discovery field
    s = resolve(token=token, signer_url="http://kw-signer", orch_url="kw:1", env=env)
    assert s.signer_url == "http://kw-signer"
    assert s.orchestrators == ("https://kw:1",)


def test_env_token_is_used_and_explicit_token_wins(token_factory: Callable[..., str]) -> None:
    env = {"LIVEPEER_TOKEN": token_factory(signer="http://env-tok")}
    assert resolve(env=env).signer_url == "http://env-tok"
    assert (
        resolve(token=token_factory(signer="http://kw-tok"), env=env).signer_url == "http://kw-tok"
    )


def test_gateway_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEPEER_ORCH_URL", "http://127.0.0.1:1")
    with Gateway() as gw:
        assert gw.settings.orchestrators == ("http://127.0.0.1:1",)


def test_secrets_never_in_repr(token_factory: Callable[..., str]) -> None:
    token = token_factory(
        signer="https://user:pw@signer.example/?key=abc",
        signer_headers={"Authorization": "Bearer topsecret"},
        discovery_headers={"X-Api-Key": "alsosecret"},
    )
    gw = Gateway(token=token, private_key="0x" + "11" * 32)
    text = repr(gw) + repr(gw.settings)
    for secret in ("topsecret", "alsosecret", "pw@", "abc", "11" * 32, token):
        assert secret not in text
    assert "Authorization" in text  # header names are fine, values are not
    gw.close()


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="timeout"):
        resolve(timeout=0, env={})
    with pytest.raises(ConfigError, match="max_retries"):
        resolve(max_retries=-1, env={})
    with pytest.raises(ConfigError, match="LIVEPEER_SIGNER_URL"):
        resolve(env={"LIVEPEER_SIGNER_URL": "ftp://nope"})


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.example:1/x?token=1") == "https://h.example:1/x?<redacted>"


def test_join_path_keeps_query_last() -> None:
    from livepeer.client._config import join_path

    assert join_path("http://s:1/base/?k=v", "/sign") == "http://s:1/base/sign?k=v"
    assert join_path("http://s:1", "/sign") == "http://s:1/sign"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_fields = st.dictionaries(
    st.sampled_from(
        ["orchestrators", "signer", "signer_headers", "discovery", "discovery_headers", "x"]
    ),
    _json,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(_fields)
def test_any_token_parses_or_names_a_problem(fields: dict[str, object]) -> None:
    import base64
    import json

    token = base64.b64encode(json.dumps(fields).encode()).decode()
    problem = ""
    try:
        parsed = parse_token(token)
    except ConfigError as exc:
        problem = str(exc)
    if problem:
        assert "token" in problem
    else:
        assert all(u.startswith(("http://", "https://")) for u in parsed.orchestrators)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_tokens_are_config_errors(raw: bytes) -> None:
    import base64

    # Anything but a ConfigError (or a parsed token) fails the test.
    with contextlib.suppress(ConfigError):
        parse_token(base64.b64encode(raw).decode())
