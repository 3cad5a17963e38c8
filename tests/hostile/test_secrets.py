"""Issues 13.5 and 12.1: configured header values, cookies, URL credentials, query strings and payment
headers never reach any log record (ours, httpx's, httpcore's), error message or repr.

Every logger is captured at DEBUG, and each secret is looked for raw and base64-encoded.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from livepeer.client import Gateway, LivepeerError, _io

API_KEY = "k3y-s3cret-value"
COOKIE = "c00kie-s3cret-value"
PASSWORD = "pw-s3cret-value"
QUERY = "q-s3cret-value"
DISCO = "d1sco-s3cret-value"


def _forms(value: str) -> list[str]:
    enc = base64.b64encode(value.encode()).decode()
    return [value, enc, enc.rstrip("=")]


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [form for s in secrets for form in _forms(s) if form in text]


def _spy_headers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Record the headers the client sends (to learn the payment tickets it must not log)."""
    sent: list[dict[str, str]] = []
    real = _io._request

    def spy(client: Any, call: Any) -> Any:
        sent.append(dict(call.headers))
        return real(client, call)

    monkeypatch.setattr(_io, "_request", spy)
    return sent


def test_no_secret_in_any_log_record_or_error(
    devnet_onchain: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = devnet_onchain
    sent = _spy_headers(monkeypatch)
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    signer = net.signer.replace("://", f"://agent:{PASSWORD}@", 1) + f"/?apikey={QUERY}"
    key = "0x" + net.net.signer.key.private_key.hex()
    headers = {"X-Api-Key": API_KEY, "Cookie": f"session={COOKIE}"}
    with Gateway(
        token=net.token,
        private_key=key,
        signer_url=signer,
        signer_headers=headers,
        discovery_headers={"X-Disco-Key": DISCO},
    ) as gw:
        assert gw.run("text-reversal", input={"text": "paid"}) == {
            "original": "paid",
            "reversed": "diap",
        }
        gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
        shown = repr(gw)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert any(r.name == "httpx" for r in caplog.records)  # httpx's own request log was captured
    assert "POST" in text
    tickets = [
        v
        for h in sent
        for k, v in h.items()
        if k.lower().startswith("livepeer") and k.lower() != "livepeer-capability" and len(v) > 8
    ]
    assert tickets  # payments were made, so there was something to leak
    secrets = [API_KEY, COOKIE, PASSWORD, QUERY, DISCO, f"agent:{PASSWORD}", key, *tickets]
    assert _leaks(text, secrets) == []
    assert _leaks(shown, secrets) == []


def test_errors_do_not_carry_url_credentials_or_header_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    caplog.set_level(logging.DEBUG)
    url = f"http://agent:{PASSWORD}@127.0.0.1:{port}/signer?apikey={QUERY}"
    gw = Gateway(signer_url=url, signer_headers={"X-Api-Key": API_KEY}, timeout=3, max_retries=0)
    with gw, pytest.raises(LivepeerError) as info:
        gw.run("text-reversal", input={"text": "x"})
    text = str(info.value) + repr(gw) + "\n".join(r.getMessage() for r in caplog.records)
    assert _leaks(text, [PASSWORD, QUERY, API_KEY, f"agent:{PASSWORD}"]) == []


def test_cookies_an_orchestrator_sets_are_not_logged(
    hostile: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from .server import json_reply

    orch = hostile()
    orch.routes[("POST", "/process/request/")] = lambda req: json_reply(
        {"ok": 1}, headers={"Set-Cookie": f"session={COOKIE}; Path=/"}
    )
    caplog.set_level(logging.DEBUG)
    with Gateway(orch_url=orch.url, max_retries=0) as gw:
        assert gw.run("echo", input={}) == {"ok": 1}
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert any(
        r.name.startswith("httpcore") for r in caplog.records
    )  # response headers were traced
    assert _leaks(text, [COOKIE]) == []


def test_orchestrator_url_credentials_stay_out_of_errors(hostile: Any) -> None:
    from livepeer.client import APIStatusError

    from .server import raw_reply

    orch = hostile()
    orch.routes[("POST", "/process/request/")] = lambda req: raw_reply(
        400, req.headers.get("authorization", "").encode(), content_type="text/plain"
    )
    url = orch.url.replace("://", f"://agent:{PASSWORD}@")
    with Gateway(orch_url=url, max_retries=0) as gw, pytest.raises(APIStatusError) as info:
        gw.run("echo", input={})
    # The credentials went as an Authorization header (the orchestrator echoed it back) ...
    assert info.value.body.startswith("Basic ")
    # ... and neither they nor that echo show in the message.
    assert _leaks(str(info.value), [PASSWORD, f"agent:{PASSWORD}"]) == []


def test_error_messages_show_orchestrator_urls_without_credentials() -> None:
    # URLs from a token's `orchestrators` or from discovery reach errors as they were given; the message
    # (and so repr, logs of the exception, the CLI) must show where, never the credentials.
    from livepeer.client import APIStatusError, NoOrchestratorError, Rejection

    url = f"https://agent:{PASSWORD}@orch.example:8935/base?key={QUERY}"
    errors = [
        APIStatusError(503, b"busy", orchestrator=url),
        NoOrchestratorError("echo", [Rejection(url, "capacity")]),
    ]
    for err in errors:
        text = str(err) + repr(err)
        assert _leaks(text, [PASSWORD, QUERY]) == [], text
        assert "https://orch.example:8935/base" in text
        # Redacted once: scrub (every error's str) leaves redact_url's "?<redacted>" as it is.
        assert "<redacted><redacted>" not in text
