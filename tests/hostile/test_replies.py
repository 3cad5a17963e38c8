"""Issue 13.8: replies that are not what the route promises are typed errors; BYOC bodies stay the worker's.
Also: the offchain fast path does not send one request twice."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import HTMLResponse, JSONResponse

from livepeer.client import Gateway, NoOrchestratorError, ProtocolError
from livepeer.devnet._network import DevnetOptions

from .server import count, raw_reply


def _patch_ai(net: Any, response: Any) -> None:
    ai = net.net.orchestrators[0].orch.ai  # the devnet's batch AI routes (devnet/_ai.py)

    async def handle(request: Any, pipeline: str) -> Any:
        await request.body()
        return response

    ai.handle = handle


def test_html_page_from_an_ai_route_is_a_protocol_error(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=1))
    _patch_ai(net, HTMLResponse("<html><body>Welcome to nginx!</body></html>"))
    with (
        Gateway(orch_url=net.orchestrators, max_retries=0) as gw,
        pytest.raises((ProtocolError, NoOrchestratorError)) as info,
    ):
        gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
    assert "html" in str(info.value).lower()


def test_error_object_with_200_from_an_ai_route_is_an_error(devnet_factory: Any) -> None:
    net = devnet_factory(DevnetOptions(orchestrators=1))
    _patch_ai(net, JSONResponse({"error": {"message": "model crashed"}}))
    with (
        Gateway(orch_url=net.orchestrators, max_retries=0) as gw,
        pytest.raises((ProtocolError, NoOrchestratorError)) as info,
    ):
        gw.run("text-to-image", input={"prompt": "p", "width": 64, "height": 64})
    assert "model crashed" in str(info.value)


def test_byoc_html_body_is_the_workers_own(hostile: Any) -> None:
    orch = hostile()
    orch.routes[("POST", "/process/request/")] = lambda req: raw_reply(
        200, b"<p>hi</p>", content_type="text/html"
    )
    with Gateway(orch_url=orch.url, max_retries=0) as gw:
        assert gw.run("echo", input={}) == "<p>hi</p>"


def test_offchain_fast_path_does_not_send_the_request_twice(hostile: Any) -> None:
    orch = hostile()
    orch.routes[("POST", "/process/request/")] = lambda req: raw_reply(500, b"boom")
    with Gateway(orch_url=orch.url, max_retries=0) as gw, pytest.raises(NoOrchestratorError):
        gw.run("echo", input={})
    assert count(orch, "POST", "/process/request/") == 1


def test_byoc_jobs_go_to_the_tokens_service_addr(hostile: Any) -> None:
    # go-livepeer's gateway POSTs to orchToken.ServiceAddr (byoc/job_gateway.go:197), which an orchestrator's
    # -serviceAddr may set to an address other than the one it was discovered at (here: another port).
    from .server import json_reply, token

    # A second candidate (without capacity) so the client probes: a lone free orchestrator is called unprobed.
    front, back, full = hostile(), hostile(), hostile()
    full.routes[("GET", "/process/token")] = lambda req: json_reply(token(capacity=0))
    front.routes[("GET", "/process/token")] = lambda req: json_reply(
        token(service_addr=back.url + "/")
    )
    back.routes[("POST", "/process/request/")] = lambda req: json_reply({"served_by": "back"})
    with Gateway(orch_url=[front.url, full.url], max_retries=0) as gw:
        assert gw.run("echo", input={}) == {"served_by": "back"}
    assert count(front, "GET", "/process/token") == 1
    assert count(front, "POST", "/process/request/") == 0
    assert count(back, "POST", "/process/request/") == 1


def test_a_service_addr_on_another_host_is_refused_before_any_job(hostile: Any) -> None:
    from .server import json_reply, token

    orch, full = hostile(), hostile()
    full.routes[("GET", "/process/token")] = lambda req: json_reply(token(capacity=0))
    orch.routes[("GET", "/process/token")] = lambda req: json_reply(
        token(service_addr="https://elsewhere.invalid:8935")
    )
    orch.routes[("POST", "/process/request/")] = lambda req: json_reply({"ok": 1})
    with (
        Gateway(orch_url=[orch.url, full.url], max_retries=0) as gw,
        pytest.raises(NoOrchestratorError, match="another host"),
    ):
        gw.run("echo", input={})
    assert count(orch, "POST", "/process/request/") == 0


@pytest.mark.parametrize(
    "addr", ["https://[", "http://[::1", "https://127.0.0.1:99999", "https://127.0.0.1:port/"]
)
def test_a_malformed_service_addr_is_a_rejection(hostile: Any, addr: str) -> None:
    # A JobToken's service_addr that Python cannot parse: the probe is refused with a reason, the call
    # moves on; it used to escape run() as a ValueError (or httpx.InvalidURL at send time).
    from .server import json_reply, token

    bad, worse, good = hostile(), hostile(), hostile()
    for orch in (bad, worse):
        orch.routes[("GET", "/process/token")] = lambda req: json_reply(token(service_addr=addr))
        orch.routes[("POST", "/process/request/")] = lambda req: json_reply({"served_by": "bad"})
    good.routes[("POST", "/process/request/")] = lambda req: json_reply({"served_by": "good"})
    with Gateway(orch_url=[bad.url, good.url], max_retries=0) as gw:
        assert gw.run("echo", input={}) == {"served_by": "good"}
    with (
        Gateway(orch_url=[bad.url, worse.url], max_retries=0) as gw,
        pytest.raises(NoOrchestratorError, match="malformed URL"),
    ):
        gw.run("echo", input={})
    assert count(bad, "POST", "/process/request/") == count(worse, "POST", "/process/request/") == 0


def test_a_file_object_is_sent_whole_to_the_orchestrator_a_failover_reaches(hostile: Any) -> None:
    # Each attempt builds its body anew; a file object read by the first one left the failover an empty part.
    import io

    from .server import raw_reply

    posts: list[bytes] = []

    def first_busy(req: Any) -> bytes:
        posts.append(req.body)
        if len(posts) == 1:
            return raw_reply(503, b"busy\n")
        return raw_reply(200, b'{"ok": true}', content_type="application/json")

    orchs = [hostile(), hostile()]
    for orch in orchs:
        orch.routes[("POST", "/process/request/")] = first_busy
    upload = io.BytesIO(b"PAYLOAD-" * 64)
    upload.name = "/tmp/clip.bin"
    with Gateway(orch_url=[o.url for o in orchs], max_retries=1) as gw:
        assert gw.run("echo", input={"clip": upload, "n": 1}) == {"ok": True}
    assert len(posts) == 2  # the busy one, then the failover
    for body in posts:
        assert b"PAYLOAD-" * 64 in body
        assert b'filename="clip.bin"' in body
