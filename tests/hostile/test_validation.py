"""Issue 13.2: a malformed orchestrator is a rejection and the call moves on to a healthy one; NaN or
negative prices never win; no untyped exception escapes selection."""

from __future__ import annotations

from typing import Any

import pytest

from livepeer.client import Gateway, LivepeerError, NoOrchestratorError
from livepeer.devnet._network import DevnetOptions

from .server import HostileOrch, count, json_reply, raw_reply, token

NAN = float("nan")
INF = float("inf")

BAD_TOKENS = {
    "capacity-text": token(capacity="abc"),
    "capacity-nan": token(capacity=NAN),
    "capacity-inf": token(capacity=INF),
    "capacity-negative": token(capacity=-3),
    "capacity-absurd": token(capacity=10**30),
    "capacity-object": token(capacity={"n": 1}),
    "price-nan": token(price=NAN),
    "price-negative": token(price=-1000),
    "price-inf": token(price=INF),
    "price-text": token(price="cheap"),
    "pixels-negative": token(price=5, pixels=-1),
    "pixels-nan": token(pixels=NAN),
    "price-not-an-object": {"price": [1, 2], "available_capacity": 1},
    "balance-text": token(balance="lots"),
    "ticket-params-not-an-object": token(ticket_params="yes"),
    "not-an-object": [1, 2, 3],
}


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_malformed_process_token_is_rejected_and_the_call_moves_on(
    devnet: Any, hostile: Any, name: str
) -> None:
    orch: HostileOrch = hostile()
    orch.routes[("GET", "/process/token")] = lambda req: json_reply(BAD_TOKENS[name])
    orch.routes[("POST", "/process/request/")] = lambda req: json_reply({"hostile": True})
    with Gateway(orch_url=[orch.url, devnet.orchestrators[0]], max_retries=0) as gw:
        out = gw.run("text-reversal", input={"text": "ab"})
    assert out == {"original": "ab", "reversed": "ba"}
    assert count(orch, "POST", "/process/request/") == 0


def test_html_token_page_is_a_rejection(devnet: Any, hostile: Any) -> None:
    orch = hostile()
    orch.routes[("GET", "/process/token")] = lambda req: raw_reply(
        200, b"<html>hi</html>", content_type="text/html"
    )
    with Gateway(orch_url=[orch.url, devnet.orchestrators[0]], max_retries=0) as gw:
        assert gw.run("text-reversal", input={"text": "ab"})["reversed"] == "ba"  # type: ignore[index]


def test_negative_grpc_price_never_wins(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=2))
    cheat = net.net.orchestrators[0].orch
    honest = cheat.orchestrator_info

    def negative_price(request: Any = None) -> Any:
        info = honest(request)
        info.price_info.pricePerUnit, info.price_info.pixelsPerUnit = -1000, 1
        return info

    cheat.orchestrator_info = negative_price
    with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        msgs = {"messages": [{"role": "user", "content": "hi"}]}
        for _ in range(3):
            with gw.stream("llm", input=msgs) as s:
                list(s)
                assert s.orchestrator == net.orchestrators[1]


def test_malformed_discovery_is_a_rejection_not_a_crash(devnet: Any) -> None:
    with HostileOrch(tls=False) as disco:
        disco.routes[("GET", "/list")] = lambda req: raw_reply(200, b"[" * 100_000)
        with (
            Gateway(discovery_url=disco.url + "/list", max_retries=0) as gw,
            pytest.raises(LivepeerError) as info,
        ):
            gw.run("text-reversal", input={"text": "ab"})
    assert "discovery" in str(info.value)


def test_malformed_discovery_entries_are_skipped(devnet: Any) -> None:
    entries = [
        {"address": 5},
        "junk",
        {"address": "ftp://nowhere"},
        # Addresses Python cannot parse (an on-chain service URI is anyone's to set): skipped, not a
        # ValueError out of discovery.
        {"address": "https://["},
        {"address": "https://orch.example:99999"},
        {"address": "orch.example:port"},
        {"address": devnet.orchestrators[0], "capabilities": "x", "runners": [1, {"app": 3}]},
    ]
    with HostileOrch(tls=False) as disco:
        disco.routes[("GET", "/list")] = lambda req: json_reply(entries)
        with Gateway(discovery_url=disco.url + "/list", max_retries=0) as gw:
            assert gw.run("text-reversal", input={"text": "ab"})["reversed"] == "ba"  # type: ignore[index]


def test_malformed_app_discovery_does_not_escape_selection(devnet: Any, hostile: Any) -> None:
    orch = hostile()
    orch.routes[("GET", "/process/token")] = lambda req: json_reply(token(capacity=0))
    orch.routes[("GET", "/discovery")] = lambda req: json_reply(
        [{"runners": [{"app": "text-reversal", "price_info": "free", "capacity": "x"}]}, 7]
    )
    with Gateway(orch_url=[orch.url, devnet.orchestrators[0]], max_retries=0) as gw:
        assert gw.run("text-reversal", input={"text": "ab"})["reversed"] == "ba"  # type: ignore[index]


@pytest.mark.anyio
async def test_malformed_lv2v_start_reply_is_a_rejection(devnet_factory: Any) -> None:
    from starlette.responses import JSONResponse

    net = devnet_factory(DevnetOptions(orchestrators=1))

    async def start_lv2v(request: Any) -> Any:
        await request.body()
        urls = {n: ["not", "a", "url"] for n in ("publish_url", "subscribe_url", "control_url")}
        return JSONResponse({"manifest_id": 7, "events_url": None, **urls})

    from starlette.routing import request_response

    route = next(
        r for r in net.net.orchestrators[0].orch.app.routes if r.path == "/live-video-to-video"
    )
    route.app = request_response(start_lv2v)
    async with Gateway(orch_url=net.orchestrators, max_retries=0) as gw:
        with pytest.raises(NoOrchestratorError) as info:
            async with gw.live("live-video-to-video", model="noop"):
                pass
    assert "channel URLs" in str(info.value)


def test_list_capabilities_survives_malformed_app_discovery(devnet: Any, hostile: Any) -> None:
    orch = hostile()
    orch.routes[("GET", "/discovery")] = lambda req: json_reply(
        [
            {
                "runners": [
                    {"app": "x", "price_info": "free"},
                    {"app": "y", "price_info": {"price": NAN}},
                ]
            }
        ]
    )
    orch.routes[("GET", "*")] = lambda req: raw_reply(404, b"")
    with Gateway(orch_url=[orch.url, devnet.orchestrators[0]], max_retries=0, timeout=10) as gw:
        offered = gw.list_capabilities()
    apps = {o.capability: o.price_per_unit for o in offered if o.orchestrator == orch.url}
    assert apps == {"x": None, "y": None}
