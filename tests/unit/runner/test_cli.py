"""``livepeer-runner``: ``schema`` in-process, ``serve`` as a real subprocess stopped by SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest

from livepeer.devnet.samples.text_reversal import TextReversal
from livepeer.runner import openapi_json
from livepeer.runner.cli import main

TARGET = "livepeer.devnet.samples.text_reversal:TextReversal"


def test_schema_prints_the_openapi_document(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["schema", TARGET]) == 0
    assert capsysbinary.readouterr().out == openapi_json(TextReversal)


def test_schema_to_file_with_name(tmp_path: object) -> None:
    out = f"{tmp_path}/schema.json"
    assert main(["schema", TARGET, "--name", "reverse", "-o", out]) == 0
    with open(out, "rb") as fh:
        assert json.load(fh)["x-livepeer-capability"] == "reverse"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon", "expected module:Class"),
        ("livepeer.nope_module:X", "cannot import"),
        ("livepeer.runner:Missing", "no attribute"),
        ("livepeer.runner:serve", "not a Pipeline"),
    ],
)
def test_bad_targets_exit_2(target: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", target]) == 2
    assert message in capsys.readouterr().err


def test_serve_runs_a_real_server_until_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livepeer.runner.cli",
            "serve",
            TARGET,
            "--port",
            "0",
            "--token",
            "tk",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        ready = json.loads(line)
        assert ready["capability"] == "text-reversal"
        with httpx.Client(base_url=ready["url"], timeout=10) as client:
            health = client.get("/health")
            r = client.post("/run", json={"text": "abc"}, headers={"Authorization": "Bearer tk"})
            denied = client.post("/run", json={"text": "abc"})
        assert health.json() == {"status": "ready"}
        assert r.json() == {"original": "abc", "reversed": "cba"}
        assert denied.status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.anyio
async def test_serve_registers_with_the_orchestrator() -> None:
    import anyio
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from livepeer.runner.hosting import hosted

    received: list[tuple[str, dict[str, object]]] = []
    registered = anyio.Event()

    async def register(request: Request) -> PlainTextResponse:
        received.append((request.headers["authorization"], await request.json()))
        registered.set()
        return PlainTextResponse("ok")

    orch = Starlette(routes=[Route("/capability/register", register, methods=["POST"])])
    async with hosted(orch) as srv:
        proc = await anyio.open_process(
            [
                sys.executable, "-m", "livepeer.runner.cli", "serve", TARGET, "--port", "0",
                "--orchestrator", srv.url, "--secret", "sekret", "--price", "5", "--capacity", "2",
                "--public-url", "http://worker.example:9000",
            ]
        )  # fmt: skip
        try:
            with anyio.fail_after(30):
                await registered.wait()
        finally:
            proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await proc.wait() == 0
            await proc.aclose()
    auth, body = received[0]
    assert auth == "sekret"
    assert body["name"] == "text-reversal"
    assert body["url"] == "http://worker.example:9000"
    assert (body["price_per_unit"], body["capacity"]) == (5, 2)
    assert body["description"] == "Reverse a piece of text, character by character."
