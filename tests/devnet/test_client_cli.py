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
