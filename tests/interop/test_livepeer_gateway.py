"""The released official client, livepeer-gateway 1.0.0 (Python >= 3.12), against the devnet.

A failure here is a devnet fidelity bug unless docs/devnet.md records that 1.0.0 deviates from go-livepeer.
The client runs in its own Python 3.12 virtualenv (created once per session with uv) in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livepeer.devnet import DevnetOptions
from livepeer.devnet.pytest_plugin import RunningDevnet, run_devnet

pytestmark = [pytest.mark.interop, pytest.mark.slow]

PY312 = Path("/root/.pyenv/versions/3.12.1/bin/python3.12")


def _python312() -> str | None:
    for candidate in (
        os.environ.get("LIVEPEER_INTEROP_PYTHON"),
        str(PY312),
        shutil.which("python3.12"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def gateway_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python 3.12 interpreter with livepeer-gateway==1.0.0 installed."""
    python = _python312()
    if python is None:
        pytest.skip(
            "no Python 3.12 interpreter found (livepeer-gateway 1.0.0 needs Python >= 3.12)"
        )
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    venv = tmp_path_factory.mktemp("lpgw") / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    subprocess.run([uv, "venv", "-q", "-p", python, str(venv)], check=True, env=env, timeout=120)
    target = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "-q", "-p", target, "livepeer-gateway==1.0.0"],
        check=True,
        env=env,
        timeout=300,
    )
    return target


@pytest.fixture(scope="module")
def offchain_net() -> Iterator[RunningDevnet]:
    with run_devnet(DevnetOptions(orchestrators=2)) as net:
        yield net


@pytest.fixture(scope="module")
def onchain_net() -> Iterator[RunningDevnet]:
    with run_devnet(DevnetOptions(onchain=True, orchestrators=1)) as net:
        yield net


def run_client(python: str, script: str, info: dict[str, Any], timeout: float = 90) -> Any:
    """Run ``script`` (which reads INFO and prints one JSON line last) with the official client."""
    code = "import json, sys\nINFO = json.loads(sys.argv[1])\n" + textwrap.dedent(script)
    proc = subprocess.run(
        [python, "-c", code, json.dumps(info)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"client failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_get_orch_info_offchain(gateway_python: str, offchain_net: RunningDevnet) -> None:
    out = run_client(
        gateway_python,
        """
        from livepeer_gateway.orch_info import get_orch_info
        info = get_orch_info(INFO["orchestrators"][1])
        print(json.dumps({"transcoder": info.transcoder, "token": info.auth_token.session_id,
                          "ticket": info.HasField("ticket_params")}))
        """,
        offchain_net.info,
    )
    assert out["transcoder"] == offchain_net.orchestrators[1]
    assert out["token"]
    assert out["ticket"] is False


def test_get_orch_info_onchain_with_signer(gateway_python: str, onchain_net: RunningDevnet) -> None:
    out = run_client(
        gateway_python,
        """
        from livepeer_gateway.orch_info import get_orch_info
        info = get_orch_info(INFO["orchestrators"][0], signer_url=INFO["signer"])
        print(json.dumps({"price": info.price_info.pricePerUnit, "address": "0x" + info.address.hex(),
                          "recipient": "0x" + info.ticket_params.recipient.hex()}))
        """,
        onchain_net.info,
    )
    assert out["price"] > 0
    assert out["address"] == onchain_net.info["orchestrator_addresses"][0].lower()
    assert out["recipient"] == out["address"]


def test_get_orch_info_survives_restart_with_new_cert(
    gateway_python: str, offchain_net: RunningDevnet
) -> None:
    """TOFU pinning: 1.0.0 evicts the pinned cert on CERTIFICATE_VERIFY_FAILED and retries once."""
    script = """
    import sys
    from livepeer_gateway.orch_info import get_orch_info
    url = INFO["orchestrators"][0]
    first = get_orch_info(url).auth_token.session_id
    sys.stdin.readline()  # wait for the restart
    second = get_orch_info(url).auth_token.session_id
    print(json.dumps({"first": first, "second": second}))
    """
    code = "import json, sys\nINFO = json.loads(sys.argv[1])\n" + textwrap.dedent(script)
    proc = subprocess.Popen(
        [gateway_python, "-c", code, json.dumps(offchain_net.info)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        old_cert = offchain_net.net.orchestrators[0].cert_pem
        time.sleep(3)  # let the client pin the first certificate (it blocks on stdin afterwards)
        offchain_net.restart(0)
        assert offchain_net.net.orchestrators[0].cert_pem != old_cert
        stdout, stderr = proc.communicate("go\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["first"] != out["second"]


def test_submit_byoc_job_offchain(gateway_python: str, offchain_net: RunningDevnet) -> None:
    out = run_client(
        gateway_python,
        """
        from livepeer_gateway.byoc import submit_byoc_job, ByocJobRequest
        r = submit_byoc_job(ByocJobRequest(capability="text-reversal", payload={"text": "hello devnet"}),
                            orch_url=INFO["orchestrators"])
        print(json.dumps({"status": r.status_code, "data": r.data, "orch": r.orchestrator_url,
                          "balance": {k.lower(): v for k, v in r.headers.items()}.get("livepeer-balance")}))
        """,
        offchain_net.info,
    )
    assert out["status"] == 200
    assert out["data"] == {"original": "hello devnet", "reversed": "tenved olleh"}
    assert out["orch"] == offchain_net.orchestrators[0]
    assert out["balance"] == "0"


def test_submit_byoc_job_offchain_via_signer_discovery(
    gateway_python: str, offchain_net: RunningDevnet
) -> None:
    out = run_client(
        gateway_python,
        """
        from livepeer_gateway.byoc import submit_byoc_job, ByocJobRequest
        r = submit_byoc_job(ByocJobRequest(capability="sentiment", payload={"text": "this is great"}),
                            discovery_url=INFO["discovery"])
        print(json.dumps({"status": r.status_code, "data": r.data}))
        """,
        offchain_net.info,
    )
    assert out["status"] == 200
    assert isinstance(out["data"], dict)


def test_submit_byoc_job_unknown_capability_fails_cleanly(
    gateway_python: str, offchain_net: RunningDevnet
) -> None:
    out = run_client(
        gateway_python,
        """
        from livepeer_gateway.byoc import submit_byoc_job, ByocJobRequest
        from livepeer_gateway.errors import LivepeerGatewayError
        try:
            submit_byoc_job(ByocJobRequest(capability="nope", payload={}), orch_url=INFO["orchestrators"])
            print(json.dumps({"error": None}))
        except LivepeerGatewayError as e:
            print(json.dumps({"error": type(e).__name__, "text": str(e)}))
        """,
        offchain_net.info,
    )
    # 503 from every orchestrator -> 1.0.0 moves on, then gives up.
    assert out["error"] == "NoOrchestratorAvailableError"
    assert "503" in out["text"]


def test_submit_byoc_job_onchain_unsigned_is_refused_as_master_refuses_it(
    gateway_python: str, onchain_net: RunningDevnet
) -> None:
    """1.0.0 signs BYOC jobs only through the branch-only /sign-byoc-job; without it the job carries no
    signature and a master orchestrator refuses it (byoc/job_orchestrator.go:569-572): 400 "Could not
    verify job creds". Offchain, 1.0.0 omits the signature (accepted); it never sends "0x"."""
    out = run_client(
        gateway_python,
        """
        from livepeer_gateway.byoc import submit_byoc_job, ByocJobRequest
        from livepeer_gateway.errors import LivepeerGatewayError
        try:
            submit_byoc_job(ByocJobRequest(capability="text-reversal", payload={"text": "x"}),
                            orch_url=INFO["orchestrators"])
            print(json.dumps({"error": None}))
        except LivepeerGatewayError as e:
            print(json.dumps({"error": type(e).__name__, "text": str(e)}))
        """,
        onchain_net.info,
    )
    assert out["error"] is not None
    assert "Could not verify job creds" in out["text"], out


LV2V_SCRIPT = """
import asyncio
from fractions import Fraction
import av
from livepeer_gateway.lv2v import start_lv2v, StartJobRequest
from livepeer_gateway.media_publish import MediaPublishConfig, VideoOutputConfig


def make_frame(i):
    f = av.VideoFrame(64, 64, "yuv420p")
    for p, plane in enumerate(f.planes):
        plane.update(bytes([(i * 3 + p * 40) % 256]) * plane.buffer_size)
    f.pts = i
    f.time_base = Fraction(1, 30)
    return f


async def main():
    job = start_lv2v(ORCHS, StartJobRequest(model_id=MODEL, params={"probe": 1}), **KWARGS)
    media = job.start_media(MediaPublishConfig(tracks=[VideoOutputConfig(fps=30, keyframe_interval_s=0.5)]))
    out = job.media_output()
    got = {"frames": [], "events": []}

    async def publish():
        for i in range(300):
            await media.write_frame(make_frame(i))
            await asyncio.sleep(1 / 30)

    async def read_frames():
        async for fr in out.frames():
            if fr.kind == "video":
                yuv = fr.frame.reformat(format="yuv420p")
                u = yuv.planes[1]
                raw = bytes(u)
                plane = b"".join(raw[r * u.line_size : r * u.line_size + u.width] for r in range(u.height))
                got["frames"].append({"w": fr.frame.width, "h": fr.frame.height, "u": sum(plane) / len(plane)})
            if len(got["frames"]) >= 10:
                return

    async def read_events():
        async for ev in job.events():
            got["events"].append(ev)
            return

    pub = asyncio.create_task(publish())
    await asyncio.wait_for(asyncio.gather(read_frames(), read_events()), 60)
    pub.cancel()
    await media.close()
    await out.close()
    await job.close()
    print(json.dumps({"frames": got["frames"], "event": got["events"][0], "manifest": job.manifest_id,
                      "orch": job.publish_url}))

asyncio.run(main())
"""


def test_start_lv2v_noop_offchain_frames_and_events(
    gateway_python: str, offchain_net: RunningDevnet
) -> None:
    script = "ORCHS = INFO['orchestrators'][0]\nMODEL = 'noop'\nKWARGS = {}\n" + LV2V_SCRIPT
    out = run_client(gateway_python, script, offchain_net.info)
    assert len(out["frames"]) >= 10
    assert out["frames"][0]["w"] == 64
    assert out["frames"][0]["h"] == 64
    # noop keeps the colour the client published (the grayscale model would flatten chroma to 128).
    assert any(abs(f["u"] - 128) > 5 for f in out["frames"])
    assert out["event"]["type"] == "status"
    assert out["event"]["inference_status"]["last_params"] == {"probe": 1}
    assert out["orch"].startswith(offchain_net.orchestrators[0] + "/ai/trickle/")


def test_start_lv2v_grayscale_onchain_with_signer_payments(
    gateway_python: str, onchain_net: RunningDevnet
) -> None:
    """On-chain: GetOrchestrator signed by the signer, /generate-live-payment, paid start, grayscale output."""
    script = "ORCHS = None\nMODEL = 'grayscale'\nKWARGS = {'token': INFO['token']}\n" + LV2V_SCRIPT
    calls_before = onchain_net.net.signer.calls
    out = run_client(gateway_python, script, onchain_net.info)
    assert len(out["frames"]) >= 10
    # Grayscale output: chroma planes are neutral (128) whatever the input colour.
    assert all(abs(f["u"] - 128) < 2 for f in out["frames"])
    assert onchain_net.net.signer.calls > calls_before


RUNNER_SCRIPT = """
import asyncio
from livepeer_gateway.live_runner import call_runner


async def main():
    url = INFO["orchestrators"][0] + "/apps/reverse/session"
    kwargs = {"signer_url": INFO["signer"]} if INFO["mode"] == "onchain" else {}
    r = await call_runner(url, payload={}, **kwargs)
    print(json.dumps({"data": r.data, "session": r.session_id}))

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["offchain", "onchain"])
def test_call_runner_reserves_a_live_runner_session(
    gateway_python: str, offchain_net: RunningDevnet, onchain_net: RunningDevnet, mode: str
) -> None:
    """py-1.0 ``call_runner`` against ``/apps/{runner}/session`` (on-chain: 402 challenge paid via the signer)."""
    import httpx

    net = onchain_net if mode == "onchain" else offchain_net
    out = run_client(gateway_python, RUNNER_SCRIPT, net.info)
    session = out["data"]
    assert session["session_id"] == out["session"]
    app = httpx.post(f"{session['app_url']}/", json={"text": "runner"}, verify=False)
    assert app.json()["reversed"] == "rennur"
    # go-livepeer server/ai_http.go:255: control_url is the session URL; stop hangs off it.
    assert httpx.post(f"{session['control_url']}/stop", verify=False).status_code == 204


def test_start_lv2v_moves_to_the_next_orchestrator_when_start_fails(gateway_python: str) -> None:
    """GetOrchestrator succeeds everywhere but the first orchestrator cannot start a runner (500)."""
    with run_devnet(DevnetOptions(orchestrators=2)) as net:
        net.faults(0).update({"worker_dead": True})
        script = "ORCHS = INFO['orchestrators']\nMODEL = 'noop'\nKWARGS = {}\n" + LV2V_SCRIPT
        out = run_client(gateway_python, script, net.info)
        assert out["orch"].startswith(net.orchestrators[1] + "/ai/trickle/")
        assert len(out["frames"]) >= 10
