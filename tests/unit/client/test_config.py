from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from livepeer.client import ConfigError, Gateway
from livepeer.client._config import parse_token, resolve
from livepeer.client._redact import redact_url


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


@pytest.mark.parametrize(
    "url", ["[", "https://[", "http://[::1", "https://h:99999", "https://h:port", "h:-1"]
)
def test_an_orchestrator_url_python_cannot_parse_is_a_config_error(url: str) -> None:
    # urlsplit raises ValueError for these (an unclosed IPv6 bracket; a port that is not 0-65535), at
    # the door or, for the port, only at the first request: both escaped as a bare ValueError.
    with pytest.raises(ConfigError, match="not an http"):
        Gateway(orch_url=url)
    token = base64.b64encode(json.dumps({"orchestrators": [url]}).encode()).decode()
    with pytest.raises(ConfigError, match="orchestrators"):
        parse_token(token)


@settings(max_examples=200, deadline=None)
@given(_fields)
@example({"orchestrators": "["})  # found by this test under load: a ValueError, not a ConfigError
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


# ---- issue 15 / 13.6: arguments checked at the door, naming the argument, before any I/O ----------


def _no_io_gateway(**kwargs: object) -> tuple[Gateway, list[str]]:
    """A Gateway whose orchestrator client records every request (there must be none)."""
    import httpx

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(500)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return Gateway(orch_url="http://127.0.0.1:1", http_client=client, **kwargs), seen  # type: ignore[arg-type]


def test_a_misspelled_token_field_is_named_with_a_suggestion(
    token_factory: Callable[..., str],
) -> None:
    with pytest.raises(ConfigError) as info:
        Gateway(token=token_factory(signr="http://127.0.0.1:9"))
    text = str(info.value)
    assert "'signr'" in text
    assert "did you mean 'signer'" in text


def test_an_unrelated_token_field_is_ignored_with_a_warning(
    token_factory: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    # livepeer-gateway 1.0.0 ignores unknown fields; a newer dashboard token must keep working.
    with caplog.at_level("WARNING", logger="livepeer.client"):
        tok = parse_token(token_factory(signer="http://127.0.0.1:9", x_future_field=1))
    assert tok.signer == "http://127.0.0.1:9"
    assert "x_future_field" in caplog.text


def test_huge_and_deeply_nested_tokens_are_config_errors() -> None:
    import base64

    with pytest.raises(ConfigError, match="at most"):
        parse_token("A" * (1 << 20))
    deep = base64.b64encode(b"[" * 50_000 + b"]" * 50_000).decode()
    with pytest.raises(ConfigError, match="token"):
        parse_token(deep[: 60 << 10] if len(deep) > 60 << 10 else deep)
    nested = base64.b64encode(b'{"signer": ' + b"[" * 5000 + b"]" * 5000 + b"}").decode()
    with pytest.raises(ConfigError, match="signer"):
        parse_token(nested)


def test_no_configuration_at_all_fails_at_construction() -> None:
    with pytest.raises(ConfigError, match="no orchestrators configured") as info:
        Gateway()
    assert "livepeer devnet" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 10**9}, "max_retries"),
        ({"max_price": float("nan")}, "max_price"),
        ({"max_price": -1}, "max_price"),
        ({"max_price": "cheap"}, "max_price"),
        ({"orch_url": 5}, "orch_url"),
        ({"signer_url": 5}, "signer_url"),
        ({"signer_headers": {"Authorization": "a\r\nX-Evil: 1"}}, "signer_headers"),
        ({"discovery_headers": ["x"]}, "discovery_headers"),
        ({"private_key": "not-a-key"}, "private_key"),
        ({"private_key": 123}, "private_key"),
        ({"http_client": object()}, "http_client"),
        ({"token": 5}, "token"),
    ],
)
def test_wrong_gateway_arguments_are_config_errors_naming_them(
    kwargs: dict[str, object], name: str
) -> None:
    base: dict[str, object] = {"orch_url": "http://127.0.0.1:1"}
    with pytest.raises(ConfigError) as info:
        Gateway(**{**base, **kwargs})  # type: ignore[arg-type]
    assert name in str(info.value)
    assert "a\r\n" not in str(info.value)  # header values are never echoed


class _Unserializable:
    pass


@pytest.mark.parametrize(
    ("call", "name"),
    [
        ({"capability": "text\x00reversal"}, "capability"),
        ({"capability": "text reversal"}, "capability"),
        ({"capability": "../../admin"}, "capability"),
        ({"capability": 5}, "capability"),
        ({"capability": ""}, "capability"),
        ({"capability": "x" * 1000}, "capability"),
        ({"model": 5}, "model"),
        ({"model": "a\nb"}, "model"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"input": [1, 2]}, "input"),
        ({"input": {"x": _Unserializable()}}, "input['x']"),
        ({"input": {"x": {1, 2}}}, "input['x']"),
        ({"input": {"x": float("nan")}}, "input['x']"),
        ({"input": {"x": {1: "a"}}}, "input['x']"),
        ({"route": "fastest"}, "route"),
    ],
)
def test_wrong_call_arguments_are_validation_errors_before_any_io(
    call: dict[str, object], name: str
) -> None:
    from livepeer.client import ValidationError

    gw, seen = _no_io_gateway()
    args = {"capability": "text-reversal", "input": {"text": "x"}, **call}
    capability = args.pop("capability")
    with gw:
        for verb in (gw.run, gw.stream):
            with pytest.raises(ValidationError) as info:
                verb(capability, **args)  # type: ignore[operator]
            assert name in str(info.value)
    assert seen == []


def test_deeply_nested_input_is_refused() -> None:
    from livepeer.client import ValidationError

    gw, seen = _no_io_gateway()
    value: object = "leaf"
    for _ in range(200):
        value = [value]
    with gw, pytest.raises(ValidationError, match="nests deeper"):
        gw.run("text-reversal", input={"x": value})
    assert seen == []


def test_files_and_plain_values_pass_the_door(tmp_path: object) -> None:
    from pathlib import Path

    from livepeer.client._validate import check_input

    check_input(
        {"image": Path("x.png"), "raw": b"\x00", "n": 1, "nested": {"a": [1.5, None, True]}}
    )


def test_live_arguments_are_checked_and_sync_with_is_a_usage_error() -> None:
    from livepeer.client import LivepeerError, UsageError, ValidationError

    gw, seen = _no_io_gateway()
    with gw:
        with pytest.raises(ValidationError, match="model"):
            gw.live("live-video-to-video", model=5)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="params"):
            gw.live("live-video-to-video", model="noop", params={"x": object()})
        session = gw.live("live-video-to-video", model="noop")
        with pytest.raises(UsageError, match="async with") as info, session:  # type: ignore[attr-defined]
            pass
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, LivepeerError)
    assert seen == []


def test_typed_wrapper_validation_errors_are_livepeer_validation_errors() -> None:
    from livepeer.client import LivepeerError, ValidationError

    gw, seen = _no_io_gateway()
    with gw, pytest.raises(LivepeerError) as info:
        gw.capabilities.text_to_image.run(model="m", prompt="x", width="wide")  # type: ignore[arg-type]
    assert isinstance(info.value, ValidationError)
    assert "width" in str(info.value)
    assert seen == []


def test_unknown_log_level_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEPEER_LOG", "verbose")
    with pytest.raises(ConfigError, match="LIVEPEER_LOG"):
        Gateway(orch_url="http://127.0.0.1:1")
    monkeypatch.setenv("LIVEPEER_LOG", "warning")
    Gateway(orch_url="http://127.0.0.1:1").close()


def test_help_documents_every_gateway_parameter() -> None:
    import inspect

    doc = inspect.getdoc(Gateway) or ""
    for name in inspect.signature(Gateway).parameters:
        assert f"    {name}:" in doc, name


def test_public_modules_export_only_their_api() -> None:
    import livepeer.client
    import livepeer.client.cli

    names = dir(livepeer.client)
    assert names == sorted(livepeer.client.__all__)
    for leaked in ("Mapping", "threading", "TYPE_CHECKING", "annotations"):
        assert leaked not in names
    assert livepeer.client.cli.__all__ == ["main"]
