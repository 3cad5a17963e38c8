from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from livepeer.client.cli import main

Start = Callable[[int], list[Any]]


def test_run_prints_json(fake_orchs: Start, capsys: pytest.CaptureFixture[str]) -> None:
    (orch,) = fake_orchs(1)
    code = main(["run", "text-reversal", "--input", '{"text": "abc"}', "--orch-url", orch.url])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {"original": "abc", "reversed": "cba"}


def test_run_input_from_file(
    fake_orchs: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (orch,) = fake_orchs(1)
    f = tmp_path / "in.json"
    f.write_text('{"text": "xy"}')
    assert main(["run", "text-reversal", "--input", f"@{f}", "--orch-url", orch.url]) == 0
    assert json.loads(capsys.readouterr().out)["reversed"] == "yx"


def test_stream_prints_data_lines(fake_orchs: Start, capsys: pytest.CaptureFixture[str]) -> None:
    (orch,) = fake_orchs(1)
    orch.sse_lines = ["data: a", "", "data: b", "", "data: [DONE]", ""]
    assert main(["stream", "text-reversal", "--input", "{}", "--orch-url", orch.url]) == 0
    assert capsys.readouterr().out.splitlines() == ["a", "b"]


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["run", "x", "--input", "{bad"], 2, "not valid JSON"),
        (["run", "x", "--input", "[1]"], 2, "JSON object"),
        (["run", "x", "--input", "@/nonexistent/file"], 2, "cannot read"),
        (["run", "x", "--token", "%%%"], 2, "base64"),
        (["run", "x"], 2, "no orchestrators configured"),
    ],
)
def test_usage_errors(
    argv: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_unavailable_exit_code(dead_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "x", "--input", "{}", "--orch-url", dead_url, "--timeout", "5"]) == 3
    assert "NoOrchestratorError" in capsys.readouterr().err


def test_server_error_exit_code(fake_orchs: Start, capsys: pytest.CaptureFixture[str]) -> None:
    (orch,) = fake_orchs(1)
    orch.request_status = 422
    assert main(["run", "text-reversal", "--input", "{}", "--orch-url", orch.url]) == 1
    assert "422" in capsys.readouterr().err


def test_delegation_reports_missing_distribution(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    real = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> Any:
        if name.startswith("livepeer.codegen"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    assert main(["generate", "--help"]) == 2
    assert "livepeer-codegen" in capsys.readouterr().err
