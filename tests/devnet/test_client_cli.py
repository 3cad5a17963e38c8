"""The ``livepeer`` command against the devnet."""

from __future__ import annotations

import json
from typing import Any

import pytest

from livepeer.client.cli import main


def test_cli_run_and_stream(devnet: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", "text-reversal", "--input", '{"text": "cli"}', "--token", devnet.token]) == 0
    )
    assert json.loads(capsys.readouterr().out) == {"original": "cli", "reversed": "ilc"}
    code = main(["stream", "token-stream", "--input", '{"text": "p q"}', "--token", devnet.token])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["token"] for line in lines] == ["p", "q"]


def test_cli_run_saves_media(
    devnet: Any, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    out = tmp_path / "img.png"
    argv = ["run", "text-to-image", "--input", '{"prompt": "x", "width": 64, "height": 64}']
    assert main([*argv, "--token", devnet.token, "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["images"][0]["url"]["saved"] == str(out)
    assert out.read_bytes().startswith(b"\x89PNG")


def test_cli_capabilities_lists_prices_onchain(
    devnet_onchain: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["capabilities", "--json", "--token", devnet_onchain.token]) == 0
    offers = json.loads(capsys.readouterr().out)
    by_name = {(o["capability"], o["orchestrator"]): o for o in offers}
    names = {name for name, _ in by_name}
    assert {"text-reversal", "token-stream"} <= names  # BYOC names from capabilities_prices
    assert any(n.startswith("text-to-image/") for n in names)
    priced = [o for o in offers if o["capability"] == "text-reversal"]
    assert all(o["price_per_unit"] and o["price_per_unit"] > 0 for o in priced)
    assert {o["orchestrator"] for o in priced} == set(devnet_onchain.orchestrators)


def test_cli_unknown_capability_exit_code(devnet: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "nope", "--input", "{}", "--token", devnet.token]) == 3
    err = capsys.readouterr().err
    assert "CapabilityError" in err
    assert "text-to-image" in err


# ---- issue 15: the first hour of a new user, against the devnet ---------------------------------------

import logging  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from livepeer.client import CapabilityError, Gateway, NoOrchestratorError  # noqa: E402

LIVEPEER = str(Path(sys.executable).parent / "livepeer")


def cli(*args: str, token: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_")}
    return subprocess.run(
        [LIVEPEER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**env, "LIVEPEER_TOKEN": token},
    )


def test_capabilities_table_lists_every_name_with_a_header(devnet: Any) -> None:
    proc = cli("capabilities", token=devnet.token)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["CAPABILITY", "ROUTE", "PRICE", "UNIT", "CAPACITY", "ORCHESTRATOR"]
    rows = {(line.split()[0], line.split()[1]) for line in lines[1:]}
    # BYOC names (offchain too), pipelines with models, and live-runner apps
    assert {("text-reversal", "byoc"), ("token-stream", "byoc")} <= rows
    assert ("text-reversal/devnet", "app") in rows
    assert any(name.startswith("text-to-image/") and route == "ai" for name, route in rows)
    # columns line up: every row's route starts where the header's does
    at = lines[0].index("ROUTE")
    assert all(line[at - 2 : at] == "  " and line[at] != " " for line in lines[1:])


def test_capabilities_json_onchain_has_units_and_capacity(devnet_onchain: Any) -> None:
    proc = cli("capabilities", "--json", token=devnet_onchain.token)
    assert proc.returncode == 0, proc.stderr
    offers = json.loads(proc.stdout)
    units = {o["route"]: o["unit"] for o in offers if o["price_per_unit"]}
    assert units["byoc"] == "wei/second"
    assert units["ai"] == "wei/pixel"
    assert all(o["unit"] is None or o["unit"].startswith("wei/") for o in offers)
    assert any(o["capacity"] for o in offers if o["route"] == "ai")


def test_misspelled_capability_gets_did_you_mean_over_byoc_names(devnet: Any) -> None:
    proc = cli("run", "text-revresal", "-i", "text=a", token=devnet.token)
    assert proc.returncode == 3
    assert "did you mean 'text-reversal'" in proc.stderr


def test_misspelled_live_model_lists_the_offered_models(devnet: Any) -> None:
    import anyio

    async def start() -> None:
        async with (
            Gateway(token=devnet.token) as gw,
            gw.live("live-video-to-video", model="graysclae"),
        ):
            pass

    with pytest.raises(CapabilityError) as info:
        anyio.run(start)
    assert "did you mean 'grayscale'" in str(info.value)
    assert "noop" in info.value.available
    assert "insufficient capacity" not in str(info.value)


def test_byoc_first_for_a_name_that_is_also_an_app(
    devnet: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``text-reversal`` is a BYOC capability and a prefix of the apps ``text-reversal/devnet*``; the
    discovery list (which names the runners) used to send it to an app without probing BYOC."""
    gw = Gateway(discovery_url=devnet.discovery)
    with caplog.at_level(logging.INFO, logger="livepeer.client"), gw:
        assert gw.run("text-reversal", input={"text": "ab"}) == {"original": "ab", "reversed": "ba"}
        assert "via byoc route" in caplog.text
        assert "via apps route" not in caplog.text
        caplog.clear()
        out = gw.run("text-reversal", input={"text": "ab"}, route="app")
        assert out == {"original": "ab", "reversed": "ba"}
        assert "via apps route" in caplog.text
        caplog.clear()
        # route="byoc" never falls back to the app of that name
        with pytest.raises(NoOrchestratorError):
            gw.run("text-reversal/devnet", input={"text": "ab"}, route="byoc", timeout=10)
        assert "via apps route" not in caplog.text


def test_onchain_byoc_without_a_signing_key_says_how_to_fix_it(devnet_onchain: Any) -> None:
    """A priced on-chain BYOC capability needs the key that pays for it: refused before any payment
    (D-byoc-1), as a configuration error (exit 2) that names both ways to set the key."""
    proc = cli("run", "text-reversal", "-i", "text=a", token=devnet_onchain.token)
    assert proc.returncode == 2
    assert "private_key=" in proc.stderr
    assert "LIVEPEER_PRIVATE_KEY" in proc.stderr


def test_live_from_a_test_pattern_to_a_file(devnet: Any, tmp_path: Path) -> None:
    import av

    out = tmp_path / "out.mp4"
    proc = cli(
        "live", "live-video-to-video", "--model", "grayscale", "--test-pattern",
        "--seconds", "2", "-o", str(out), token=devnet.token,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["frames_sent"] == 30
    assert stats["frames_received"] > 0
    assert "session on https://127.0.0.1:" in proc.stderr
    assert (
        f"sent 30 frames  received {stats['frames_received']} 256x256" in proc.stderr
    )  # live stats
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == stats["frames_received"]
    r, g, b = frames[-1].to_ndarray(format="rgb24")[0, 0]
    assert abs(int(r) - int(g)) < 16
    assert abs(int(g) - int(b)) < 16  # grayscale came back
    # ... and that file is a fine input video
    again = tmp_path / "again.mp4"
    proc = cli(
        "live", "live-video-to-video", "--model", "noop", "--video", str(out),
        "--seconds", "1", "-o", str(again), token=devnet.token,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["frames_sent"] == min(15, len(frames))
    assert again.stat().st_size > 0


def test_degraded_paths_are_warnings(devnet: Any, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/orchestrators"
    gw = Gateway(discovery_url=dead, signer_url=devnet.signer)
    with caplog.at_level(logging.WARNING, logger="livepeer.client"), gw:
        assert gw.run("text-reversal", input={"text": "ab"})["reversed"] == "ba"
    (record,) = [r for r in caplog.records if "discovery fell back" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert dead.split("/orchestrators")[0] in record.getMessage()
