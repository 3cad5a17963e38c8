"""Live-runner routes of §10 beyond persistent sessions: single-shot runners and fixed-price runners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from livepeer.client import Gateway
from livepeer.client._routes import apps as apps_live
from livepeer.devnet._network import DevnetOptions
from livepeer.devnet.pytest_plugin import RunningDevnet


def runners(url: str) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{url}/discovery", verify=False, timeout=10).json()
    return {r["app"]: r for r in body[0]["runners"]}


def test_discovery_lists_single_shot_and_fixed_price_runners(devnet_onchain: RunningDevnet) -> None:
    url = devnet_onchain.orchestrators[0]
    listed = runners(url)
    once, fixed = listed["text-reversal/devnet-once"], listed["text-reversal/devnet-fixed"]
    assert once["mode"] == "single-shot"
    assert once["url"] == f"{url}/apps/reverse-once/app"
    assert fixed["mode"] == "persistent"
    assert fixed["price_info"]["unit"] == "fixed"
    assert listed["text-reversal/devnet"]["price_info"]["unit"] == "seconds"


def test_single_shot_offchain_through_run_keeps_no_session(devnet: RunningDevnet) -> None:
    with Gateway(token=devnet.token) as gw:
        out = gw.run("text-reversal/devnet-once", input={"text": "abc"})
    assert out == {"original": "abc", "reversed": "cba"}
    assert all(not h.orch.apps.sessions for h in devnet.net.orchestrators)


def test_single_shot_onchain_402_challenge_paid_by_the_signer(
    devnet_onchain: RunningDevnet,
) -> None:
    url = devnet_onchain.orchestrators[0]
    with httpx.Client(verify=False, timeout=10) as c:
        no_payer = c.post(f"{url}/apps/reverse-once/app", json={"text": "x"})
        assert no_payer.status_code == 402
        # go-livepeer server/ai_http.go:395-400, 486-492: respondJsonError envelope.
        assert no_payer.json() == {
            "error": {"message": "invalid live runner payment signer address"}
        }
        challenge = c.post(
            f"{url}/apps/reverse-once/app",
            json={"text": "x"},
            headers={"Livepeer-Payer-Address": devnet_onchain.info["signer_address"]},
        )
        assert challenge.status_code == 402
        assert {"payment_params", "manifest_id", "payment_url"} <= set(challenge.json())
        # A persistent runner is not callable single-shot, and the other way round.
        assert c.post(f"{url}/apps/reverse/app", json={}).status_code in (400, 402)
    with Gateway(token=devnet_onchain.token) as gw:
        assert gw.run("text-reversal/devnet-once", input={"text": "paid"}) == {
            "original": "paid",
            "reversed": "diap",
        }


def test_mode_mismatch_is_a_400_offchain(devnet: RunningDevnet) -> None:
    url = devnet.orchestrators[0]
    with httpx.Client(verify=False, timeout=10) as c:
        assert c.post(f"{url}/apps/reverse/app", json={}).status_code == 400
        assert c.post(f"{url}/apps/reverse-once/session").status_code == 400


@pytest.mark.anyio
async def test_fixed_price_session_is_paid_once_and_refuses_session_payments(
    devnet_factory: Callable[[DevnetOptions], RunningDevnet],
) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=1, onchain=True))
    async with Gateway(token=net.token) as gw:
        with anyio.fail_after(60):
            async with gw.live("text-reversal/devnet-fixed") as session:
                job = session._job
                assert isinstance(job, apps_live.AppJob)
                assert job.payment_interval is None  # the challenge paid the fixed price
                async with httpx.AsyncClient(verify=False) as c:
                    reply = await c.post((session.app_url or "") + "/", json={"text": "fix"})
                    assert reply.json() == {"original": "fix", "reversed": "xif"}
                    payment = await c.post(
                        f"{net.orchestrators[0]}/apps/reverse-fixed/session/{session.stream_id}/payment"
                    )
                assert payment.status_code == 409
