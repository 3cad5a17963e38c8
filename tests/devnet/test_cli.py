"""``python -m livepeer.devnet``: one JSON line on stdout, ready quickly, exits 0 on SIGINT/SIGTERM."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest

from livepeer.devnet.__main__ import build_parser


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "livepeer.devnet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the devnet is ready (pytest-timeout bounds it)
    if not line:
        proc.wait(10)
        raise AssertionError(proc.stderr.read() if proc.stderr else "no output")
    return proc, json.loads(line)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_one_json_line_and_exits_zero(sig: signal.Signals) -> None:
    proc, info = start("--offchain", "--orchestrators", "2")
    try:
        assert set(info) >= {"orchestrators", "signer", "discovery", "token"}
        assert len(info["orchestrators"]) == 2
        assert all(u.startswith("https://127.0.0.1:") for u in info["orchestrators"])
        assert info["mode"] == "offchain"
        token = json.loads(base64.b64decode(info["token"], validate=True))
        assert token["orchestrators"] == info["orchestrators"]
        assert token["signer"] == info["signer"]
        assert httpx.get(info["discovery"]).status_code == 200
        # An idle keep-alive TLS connection must not hold the shutdown up.
        keep = httpx.Client(verify=False)
        keep.get(f"{info['orchestrators'][0]}/process/token")
        proc.send_signal(sig)
        assert proc.wait(15) == 0
        assert proc.stdout is not None
        assert proc.stdout.read() == ""  # exactly one line
        keep.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_onchain_with_a_faulty_orchestrator_and_port_base() -> None:
    import socket

    with socket.socket() as s:  # find a free block of three ports
        s.bind(("127.0.0.1", 0))
        base = s.getsockname()[1]
    proc, info = start(
        "--onchain", "--orchestrators", "2", "--port-base", str(base), "--fault", "no_capacity"
    )
    try:
        assert info["orchestrators"] == [
            f"https://127.0.0.1:{base}",
            f"https://127.0.0.1:{base + 1}",
        ]
        assert info["signer"] == f"http://127.0.0.1:{base + 2}"
        assert info["mode"] == "onchain"
        faults = httpx.get(f"{info['control']}/faults").json()["orchestrators"]
        assert [f["no_capacity"] for f in faults] == [False, True]
        codes = []
        for url in info["orchestrators"]:
            tok = httpx.get(
                f"{url}/process/token",
                headers={
                    "Livepeer-Eth-Address": base64.b64encode(
                        json.dumps({"addr": "0x0", "sig": "0x0"}).encode()
                    ).decode(),
                    "Livepeer-Capability": "text-reversal",
                },
                verify=False,
            )
            codes.append(tok.status_code)
        assert codes == [400, 400]  # on-chain: the bogus sender signature is refused
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_parser_rejects_both_modes() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--offchain", "--onchain"])
    assert build_parser().parse_args([]).onchain is False


@pytest.mark.parametrize(
    "argv",
    [
        ["--orchestrators", "0"],
        ["--fault", "bogus"],
        ["--signer-fault", "storm_status=7"],
        ["--faulty", "3"],
    ],
)
def test_bad_arguments_exit_2_without_starting(argv: list[str]) -> None:
    from livepeer.devnet.__main__ import main

    assert main(argv) == 2


# ---- for humans: readable lines after the JSON line, stable tokens with --port-base -----------------


def _free_base(n: int) -> int:
    """A base port with ``n`` + 3 free ports after it, below the kernel's ephemeral range: one free
    ephemeral port says nothing about its neighbours, which outgoing connections take at random."""
    import random
    import socket

    for _ in range(100):
        base = random.randrange(20_000, 30_000)
        held: list[socket.socket] = []
        try:
            for port in range(base, base + n + 3):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError("no free run of ports between 20000 and 30000")


def _human_run(*args: str, lines: int) -> tuple[subprocess.Popen[str], dict[str, Any], list[str]]:
    proc, info = start("--human", *args)
    assert proc.stdout is not None
    text = []
    for _ in range(lines):
        line = proc.stdout.readline()
        text.append(line.rstrip("\n"))
        if line.startswith("Stop with Ctrl-C"):
            break
    return proc, info, text


def test_human_lines_follow_the_json_line() -> None:
    base = _free_base(2)
    proc, info, lines = _human_run("--port-base", str(base), lines=40)
    try:
        text = "\n".join(lines)
        assert f"  orchestrator 0: https://127.0.0.1:{base}" in text
        assert f"export LIVEPEER_TOKEN={info['token']}" in text
        assert "LIVEPEER_PRIVATE_KEY" not in text  # offchain jobs are not signed
        assert "livepeer run text-reversal -i text=hello" in text
        assert lines[-1].startswith("Stop with Ctrl-C")
        assert "--port-base" not in lines[-1]  # already fixed
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0


def test_onchain_human_lines_give_the_byoc_signing_key() -> None:
    from eth_account import Account

    proc, info, lines = _human_run("--onchain", lines=40)
    try:
        (line,) = [x for x in lines if "export LIVEPEER_PRIVATE_KEY=" in x]
        key = line.split("=", 1)[1]
        assert Account.from_key(key).address == info["signer_address"]
        assert "--port-base" in lines[-1]  # ports change without it: say how to keep them
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0


def test_not_a_terminal_prints_only_the_json_line() -> None:
    # Also: a signal right after the ready line stops the devnet cleanly (handlers come first).
    proc, _ = start("--offchain")
    try:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert proc.stdout is not None
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()


def test_port_base_keeps_the_token_across_restarts() -> None:
    base = _free_base(2)
    tokens = []
    for _ in range(2):
        proc, info = start("--port-base", str(base))
        tokens.append(info["token"])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    assert tokens[0] == tokens[1]


def test_livepeer_devnet_help_uses_the_livepeer_name() -> None:
    import os

    livepeer = os.path.join(os.path.dirname(sys.executable), "livepeer")
    out = subprocess.run(
        [livepeer, "devnet", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.startswith("usage: livepeer devnet")
    assert "livepeer-devnet" not in out
    assert "--port-base" in out
