"""The client under the devnet's fault switches (each test owns its devnet)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from livepeer.client import APIStatusError, Gateway, NoOrchestratorError
from livepeer.devnet._network import DevnetOptions

Factory = Callable[..., Any]


def _onchain(net: Any, **kw: Any) -> Gateway:
    key = "0x" + net.net.signer.key.private_key.hex()
    return Gateway(token=net.token, private_key=key, **kw)


def test_signer_480_storm_is_refreshed(devnet_factory: Factory) -> None:
    net = devnet_factory(DevnetOptions(onchain=True, orchestrators=1))
    net.signer_faults.storm_status, net.signer_faults.storm_count = 480, 2
    # An AI pipeline: BYOC no longer goes through the signer (its tickets are signed locally, D-byoc-1).
    with _onchain(net) as gw:
        out = gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
        assert isinstance(out, dict)
    assert net.signer_faults.storm_count == 0


def test_signer_481_moves_to_the_next_orchestrator(devnet_factory: Factory) -> None:
    net = devnet_factory(DevnetOptions(onchain=True, orchestrators=2))
    net.signer_faults.storm_status, net.signer_faults.storm_count = 481, 1
    with _onchain(net) as gw:
        out = gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
        assert isinstance(out, dict)
    assert net.signer_faults.storm_count == 0


def test_signer_500_surfaces_as_signer_error(devnet_factory: Factory) -> None:
    from livepeer.client import SignerError

    net = devnet_factory(DevnetOptions(onchain=True, orchestrators=1))
    net.signer_faults.storm_status, net.signer_faults.storm_count = 500, 5
    gw = _onchain(net)
    with gw, pytest.raises(SignerError) as info:
        gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
    assert info.value.status_code == 500


def test_a_signer_identity_refused_as_stale_is_fetched_again(devnet_factory: Factory) -> None:
    """A signer restarted with another key at the same URL: the process's cached identity is refused by
    GetOrchestrator (server/rpc.go:679-683); the next retry round asks the signer again."""
    from livepeer.client import _signer

    net = devnet_factory(DevnetOptions(onchain=True, orchestrators=1))
    stale = _signer.Identity("0x" + "11" * 20, "0x" + "22" * 65)
    _signer._identity_cache[(net.signer, ())] = stale
    with _onchain(net) as gw:
        gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
    assert _signer._identity_cache[(net.signer, ())].address == net.net.signer.key.address


def test_dead_worker_fails_over(devnet_factory: Factory) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=2))
    with Gateway(token=net.token) as gw:
        assert gw.run("sentiment", input={"text": "fine"})  # warm both probes
        for i in range(2):
            net.faults(i).worker_dead = i == 0
        first = net.orchestrators[0]
        gw._dispatch.selector.clear()
        out = gw.run("text-reversal", input={"text": "w"})
        assert out == {"original": "w", "reversed": "w"}
        net.faults(1).worker_dead = True
        gw._dispatch.selector.clear()
        with pytest.raises(NoOrchestratorError) as info:
            gw.run("text-reversal", input={"text": "w"})
    reasons = {r.orchestrator: r.reason for r in info.value.rejections}
    assert set(reasons) == set(net.orchestrators)
    assert first in reasons


def test_slow_worker_hits_the_deadline(devnet_factory: Factory) -> None:
    from livepeer.client import TimeoutError

    net = devnet_factory(DevnetOptions(orchestrators=1))
    net.faults(0).worker_delay = 5.0
    gw = Gateway(token=net.token)
    with gw, pytest.raises(TimeoutError):
        gw.run("text-reversal", input={"text": "slow"}, timeout=1.5)


def test_restart_with_new_certificate_is_pinned_again_by_a_new_gateway(
    devnet_factory: Factory,
) -> None:
    # Within one Gateway a changed certificate is refused (tests/hostile/test_tls.py); a new Gateway
    # trusts the restarted orchestrator on first use (docs/reliability.md, trust model).
    net = devnet_factory(DevnetOptions(orchestrators=1))
    body = {"prompt": "x", "width": 64, "height": 64}
    with Gateway(token=net.token) as gw:
        assert isinstance(gw.run("text-to-image", input=body), dict)
    net.restart(0)
    with Gateway(token=net.token) as gw:
        out = gw.run("text-to-image", input=body)
    assert isinstance(out, dict)
    assert out["images"][0]["url"].read().startswith(b"\x89PNG")


def test_price_rise_respects_max_price(devnet_factory: Factory) -> None:
    net = devnet_factory(DevnetOptions(onchain=True, orchestrators=1))
    with _onchain(net) as gw:
        probe_price = None
        gw.run("text-reversal", input={"text": "p"})
        for p in gw._dispatch.selector._cache.values():
            probe_price = p.price
    assert probe_price is not None
    assert probe_price > 0
    net.faults(0).price_multiplier = 10
    gw = _onchain(net, max_price=probe_price * 2)
    with gw, pytest.raises((NoOrchestratorError, APIStatusError)) as info:
        gw.run("text-reversal", input={"text": "p"})
    assert "max_price" in str(info.value)
