"""The spend ledger and budgets against the devnet: what the ledger says equals what the orchestrator received.

The devnet orchestrator verifies every ticket as go-livepeer does and adds the expected value of each accepted
ticket to ``received``; the ledger counts the same bundles on the client side before they are sent. Equality is
exact (both are Fractions of wei), so a dropped, doubled or mis-valued payment shows up.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import anyio
import pytest

from livepeer.client import BudgetExceededError, Gateway, PaymentError, eth, gwei
from livepeer.client._routes import ai as lv2v
from livepeer.devnet import DevnetOptions
from livepeer.devnet._keys import EthKey


def funded(net: Any) -> EthKey:
    key = EthKey.generate()
    net.net.fund(key.address)
    return key


def keyed(net: Any, key: EthKey, **kwargs: Any) -> Gateway:
    return Gateway(token=net.token, private_key="0x" + key.private_key.hex(), **kwargs)


def test_offchain_spend_is_zero(devnet: Any) -> None:
    with Gateway(token=devnet.token) as gw:
        assert gw.run("text-reversal", input={"text": "ab"}) == {"original": "ab", "reversed": "ba"}
        with gw.stream("token-stream", input={"text": "a b"}) as s:
            assert len(list(s)) == 2
        assert s.cost == 0
        summary = gw.spend.summary()
    assert (summary.total, summary.payments, summary.tickets) == (Fraction(0), 0, 0)
    assert gw.spend.total_wei == 0


def test_onchain_byoc_ledger_equals_what_the_orchestrator_received(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    orch = net.orchestrators[0]
    with keyed(net, key) as gw:
        assert gw.run("text-reversal", input={"text": "paid"})["reversed"] == "diap"  # type: ignore[index]
        after_run = gw.spend.summary()
        assert after_run.payments == 1
        assert after_run.tickets >= 1
        assert after_run.total > 0
        assert after_run.total == net.received(0)
        with gw.stream("token-stream", input={"text": "x y"}) as s:
            assert [ev.json()["token"] for ev in s] == ["x", "y"]  # type: ignore[index]
        summary = gw.spend.summary()
    assert summary.total == net.received(0)
    assert s.cost == summary.total_wei - after_run.total_wei or s.cost == 0
    assert set(summary.by_orchestrator) == {orch}
    assert sum(summary.by_capability.values()) == summary.total
    assert set(summary.by_capability) <= {"text-reversal", "token-stream"}
    charge = gw.spend.entries[0]
    assert charge.orchestrator == orch
    assert charge.capability == "text-reversal"
    assert charge.unit == "seconds"
    assert charge.price_per_unit is not None
    assert charge.price_per_unit > 0


def test_per_call_budget_refuses_before_any_ticket_is_sent(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    with keyed(net, key, max_spend_per_call=1, max_retries=0) as gw:
        with pytest.raises(BudgetExceededError) as info:
            gw.run("text-reversal", input={"text": "x"})
        assert isinstance(info.value, PaymentError)
        assert info.value.budget == "max_spend_per_call"
        assert info.value.limit_wei == 1
        assert info.value.needed_wei > 1
        assert gw.spend.total_wei == 0
    assert net.received(0) == 0
    assert not net.net.orchestrators[0].orch.balances._credit


def test_gateway_budget_allows_the_first_call_and_stops_the_second(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    with keyed(net, key) as probe_gw:
        probe_gw.run("sentiment", input={"text": "good"})
        one = probe_gw.spend.summary().total
    spent_before = net.received(0)
    budget = int(one) + 1  # room for one payment like the first, not two
    with keyed(net, key, max_spend=budget, max_retries=0) as gw:
        # Credit from the first Gateway is still at the orchestrator: drain it so every call must pay.
        net.net.orchestrators[0].orch.balances.clear()
        gw.run("sentiment", input={"text": "good"})
        net.net.orchestrators[0].orch.balances.clear()
        with pytest.raises(BudgetExceededError, match="max_spend"):
            gw.run("sentiment", input={"text": "bad"})
        assert gw.spend.summary().payments == 1
        assert net.received(0) - spent_before == gw.spend.summary().total


def test_price_rise_is_caught_by_the_budget_not_paid(devnet_factory: Any) -> None:
    """A hostile or repriced orchestrator asks 5000x more: the tickets it would need cross the budget."""
    net = devnet_factory(DevnetOptions(onchain=True))
    key = funded(net)
    with keyed(net, key, max_retries=0) as gw:
        gw.run("text-reversal", input={"text": "a"})
        per_call = gw.spend.summary().total
    net.net.orchestrators[0].orch.balances.clear()
    net.faults(0).price_multiplier = 5000  # 1000 -> 5e6 wei/s: 60 tickets instead of 1
    before = net.received(0)
    gw = keyed(net, key, max_retries=0, max_spend_per_call=int(per_call * 2))
    with gw, pytest.raises(BudgetExceededError):
        gw.run("text-reversal", input={"text": "b"})
    assert net.received(0) == before


@pytest.mark.anyio
async def test_live_session_stops_at_its_budget(
    devnet_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LV2V through the remote signer: the start payment fits the per-call budget, the next one does not."""
    monkeypatch.setattr(lv2v, "PAYMENT_INTERVAL", 0.2)
    net = devnet_factory(DevnetOptions(orchestrators=1, onchain=True))
    async with Gateway(token=net.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("live-video-to-video", model="noop") as first:
                start_cost = first.cost
            assert start_cost > 0
            received = net.received(0)
            assert gw.spend.summary().total == received
            gw2 = Gateway(token=net.token, max_spend_per_call=start_cost)
            async with gw2:
                async with gw2.live("live-video-to-video", model="noop") as session:
                    assert session.cost == start_cost
                    for _ in range(400):  # payment cycles come every 0.2 s
                        if session.closed:
                            break
                        await anyio.sleep(0.05)
                    assert session.closed
                    with pytest.raises(BudgetExceededError):
                        await session.control.write({"prompt": "more"})
                assert session.cost == start_cost
                assert gw2.spend.summary().total == net.received(0) - received


def test_budget_arguments_are_validated() -> None:
    from livepeer.client import ConfigError

    assert eth("0.001") == 10**15
    assert gwei("1.5") == 1_500_000_000
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(ConfigError, match="max_spend"):
            Gateway(orch_url="https://127.0.0.1:1", max_spend=bad)  # type: ignore[arg-type]
    for bad_amount in ("nan", "-1", "x"):
        with pytest.raises(ConfigError):
            eth(bad_amount)
    assert Fraction(Gateway(orch_url="https://127.0.0.1:1").spend.total_wei) == 0


def test_cli_show_cost_and_max_spend(devnet_factory: Any) -> None:
    """``livepeer run --show-cost`` prints what the devnet received; ``--max-spend`` refuses before paying."""
    import math
    import os
    import subprocess
    import sys
    from pathlib import Path

    livepeer = str(Path(sys.executable).with_name("livepeer"))
    net = devnet_factory(DevnetOptions(onchain=True))
    key = (
        "0x" + net.net.signer.key.private_key.hex()
    )  # the devnet's funded key, as `livepeer devnet` prints
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_")}
    env |= {"LIVEPEER_TOKEN": net.token, "LIVEPEER_PRIVATE_KEY": key}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [livepeer, *args], capture_output=True, text=True, timeout=120, check=False, env=env
        )

    proc = cli("run", "text-reversal", "-i", "text=ab", "--show-cost")
    assert proc.returncode == 0, proc.stderr
    assert '"reversed": "ba"' in proc.stdout
    paid = math.ceil(net.received(0))
    assert paid > 0
    assert f"cost: {paid} wei" in proc.stderr
    assert f"{net.orchestrators[0]}: {paid} wei" in proc.stderr
    net.net.orchestrators[0].orch.balances.clear()
    before = net.received(0)
    proc = cli("run", "text-reversal", "-i", "text=ab", "--max-spend", "1", "--show-cost")
    assert proc.returncode == 4, proc.stderr  # payment errors exit 4
    assert "BudgetExceededError" in proc.stderr
    assert "cost: 0 wei" in proc.stderr
    assert net.received(0) == before
