"""Issue 13.7: one certificate per orchestrator for a Gateway's life, across gRPC and HTTPS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from livepeer.client import Gateway, NoOrchestratorError
from livepeer.devnet._network import DevnetOptions

from .server import count, json_reply


def test_changed_certificate_mid_session_is_refused_over_https(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=1))
    with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        assert gw.run("text-reversal", input={"text": "ab"})
        net.restart(0)  # same port, new certificate: an impostor as far as we can tell
        gw._dispatch.selector.clear()
        with pytest.raises(NoOrchestratorError) as info:
            gw.run("text-reversal", input={"text": "ab"})
    assert "certificate" in str(info.value)
    with Gateway(orch_url=net.orchestrators, max_retries=0) as fresh:  # a new Gateway pins anew
        assert fresh.run("text-reversal", input={"text": "ab"})


def test_changed_certificate_is_refused_over_grpc(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=1))
    args = {"prompt": "p", "width": 64, "height": 64}
    with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        gw.run("text-to-image", input=args)
        net.restart(0)
        gw._dispatch.selector.clear()
        gw._dispatch._info.close()  # drop the open gRPC channel: the next probe dials (and checks) anew
        with pytest.raises(NoOrchestratorError) as info:
            gw.run("text-to-image", input=args)
    assert "certificate" in str(info.value)


def test_pin_file_keeps_pins_across_gateways(
    devnet_factory: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pins = tmp_path / "pins.json"
    monkeypatch.setenv("LIVEPEER_PINS", str(pins))
    net = devnet_factory(DevnetOptions(orchestrators=1))
    with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        assert gw.run("text-reversal", input={"text": "ab"})
    saved = json.loads(pins.read_text())
    assert len(saved) == 1
    net.restart(0)
    with (
        Gateway(orch_url=net.orchestrators, max_retries=0) as gw,
        pytest.raises(NoOrchestratorError) as info,
    ):
        gw.run("text-reversal", input={"text": "ab"})
    assert "certificate" in str(info.value)
    pins.write_text("{}")  # the operator vouches for the new certificate
    with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        assert gw.run("text-reversal", input={"text": "ab"})


def test_rotated_certificate_on_a_hostile_orchestrator_is_refused(hostile: Any) -> None:
    orch = hostile()
    orch.routes[("POST", "/process/request/")] = lambda req: json_reply({"ok": 1})
    with Gateway(orch_url=orch.url, max_retries=0) as gw:
        assert gw.run("echo", input={}) == {"ok": 1}
        orch.rotate_cert()
        gw.close()  # new connections only (a kept-alive one would still be the pinned peer)
        with pytest.raises(NoOrchestratorError):
            gw.run("echo", input={})
    assert count(orch, "POST", "/process/request/") == 1
