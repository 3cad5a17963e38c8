"""Issue 13.4: live sessions always end their job, and refused start replies are stopped and failed over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from livepeer.client import Gateway, NoOrchestratorError
from livepeer.devnet._network import DevnetOptions
from livepeer.devnet.pytest_plugin import run_devnet

from .server import HostileOrch, count, json_reply, raw_reply, token


@pytest.fixture
def one_orch() -> Iterator[Any]:
    """A private one-orchestrator devnet (these tests change its capacity and routes)."""
    with run_devnet(DevnetOptions(orchestrators=1)) as net:
        yield net


async def _wait_until(predicate: Any, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        await anyio.sleep(0.05)
    return predicate()


@pytest.mark.anyio
async def test_leaving_a_live_session_without_publishing_ends_the_job(one_orch: Any) -> None:
    net = one_orch
    orch = net.net.orchestrators[0].orch
    orch.options.lv2v_capacity = 1
    async with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        for _ in range(2):  # one more than the capacity: a leaked job would refuse the second
            with anyio.fail_after(20):
                async with gw.live("live-video-to-video", model="noop"):
                    pass
            assert await _wait_until(lambda: orch.lv2v_in_use == 0, 5), "job still running"


def _start_with(urls: dict[str, str]) -> Any:
    return lambda req: raw_reply(200, b"", headers=urls)


@pytest.mark.parametrize("where", ["foreign-host", "downgrade"])
@pytest.mark.anyio
async def test_refused_channel_urls_stop_the_stream_and_fail_over(devnet: Any, where: str) -> None:
    with HostileOrch() as orch:
        base = (
            "https://evil.example:443"
            if where == "foreign-host"
            else orch.url.replace("https://", "http://")
        )
        orch.routes[("GET", "/process/token")] = lambda req: json_reply(token(capacity=4))
        orch.routes[("POST", "/ai/stream/start")] = _start_with(
            {"X-Control-Url": f"{base}/c", "X-Events-Url": f"{base}/e"}
        )
        orch.routes[("POST", "/ai/stream/stop")] = lambda req: json_reply({})
        async with Gateway(orch_url=[orch.url], max_retries=0) as gw:
            with anyio.fail_after(20), pytest.raises(NoOrchestratorError) as info:
                async with gw.live("live-grayscale"):
                    pass
        assert "allow_foreign_urls" not in str(info.value)
        assert count(orch, "POST", "/ai/stream/stop") == 1
        async with Gateway(orch_url=[orch.url, devnet.orchestrators[0]], max_retries=0) as gw:
            with anyio.fail_after(30):
                async with gw.live("live-grayscale") as session:
                    assert session.orchestrator == devnet.orchestrators[0]
        assert count(orch, "POST", "/ai/stream/start") == count(orch, "POST", "/ai/stream/stop")


@pytest.mark.anyio
async def test_refused_lv2v_start_closes_its_publish_channel(one_orch: Any) -> None:
    import json

    from starlette.responses import JSONResponse
    from starlette.routing import request_response

    net = one_orch
    orch = net.net.orchestrators[0].orch
    route = next(r for r in orch.app.routes if getattr(r, "path", "") == "/live-video-to-video")
    honest = orch.live.start_lv2v

    async def foreign_control(request: Any) -> Any:
        reply = await honest(request)  # the job really starts on the orchestrator
        data = json.loads(reply.body)
        data["control_url"] = "https://evil.example/control"
        return JSONResponse(data)

    route.app = request_response(foreign_control)
    async with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        with anyio.fail_after(20), pytest.raises(NoOrchestratorError):
            async with gw.live("live-video-to-video", model="noop"):
                pass
    assert await _wait_until(lambda: orch.lv2v_in_use == 0, 5), "refused job still running"
