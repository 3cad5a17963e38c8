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
