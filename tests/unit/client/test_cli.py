from __future__ import annotations

import contextlib
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


# ---- the real `livepeer` entry point, as a user runs it ----------------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

LIVEPEER = str(Path(sys.executable).parent / "livepeer")


def cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_")}
    return subprocess.run(
        [LIVEPEER, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**base, **(env or {})},
        cwd=cwd,
    )


def test_version() -> None:
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "livepeer 0.1.0 (livepeer-client)"


@pytest.mark.parametrize("command", ["run", "stream", "live", "capabilities", "devnet", "generate"])
def test_every_subcommand_has_help_with_an_example_under_one_program_name(command: str) -> None:
    proc = cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: livepeer {command}")
    assert "example:" in proc.stdout
    assert "livepeer-codegen" not in proc.stdout
    assert "livepeer-devnet" not in proc.stdout
    top = cli("--help").stdout
    assert command in top


def test_key_value_inputs_and_stdin(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    proc = cli("run", "text-reversal", "-i", "text=abc", "--orch-url", orch.url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"original": "abc", "reversed": "cba"}
    proc = cli(
        "run", "text-reversal", "--input", "@-", "--orch-url", orch.url, stdin='{"text": "xy"}'
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["reversed"] == "yx"
    # Later inputs override earlier ones; values that parse as JSON are JSON.
    proc = cli(
        "run",
        "text-reversal",
        "-i",
        '{"text": "a", "n": 1}',
        "-i",
        "text=12",
        "--orch-url",
        orch.url,
    )
    assert json.loads(orch.bodies[-1]) == {"text": 12, "n": 1}


def test_bad_inputs_are_usage_errors_before_configuration() -> None:
    proc = cli("run", "x", "-i", "novalue")
    assert proc.returncode == 2
    assert "key=value" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_media_is_summarized_on_the_terminal_and_saved_with_output(
    fake_orchs: Start, tmp_path: Path
) -> None:
    (orch,) = fake_orchs(1)
    orch.request_body = b"\x89PNG" + b"\x00" * 400_000
    proc = cli("run", "text-reversal", "-i", "text=a", "--orch-url", orch.url)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) < 1000  # not 400 KB of bytes or base64
    shown = json.loads(proc.stdout)
    assert shown["bytes"] == 400_004
    assert "--output DIR" in shown["url"]
    out = tmp_path / "out"
    proc = cli("run", "text-reversal", "-i", "text=a", "--orch-url", orch.url, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    saved = Path(json.loads(proc.stdout)["saved"])
    assert saved.parent == out
    assert saved.read_bytes().startswith(b"\x89PNG")
    assert json.loads((out / "result.json").read_text())["saved"] == str(saved)


def test_output_keeps_a_json_result(fake_orchs: Start, tmp_path: Path) -> None:
    (orch,) = fake_orchs(1)
    proc = cli(
        "run",
        "text-reversal",
        "-i",
        "text=ab",
        "--orch-url",
        orch.url,
        "-o",
        str(tmp_path / "r.json"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "r.json").read_text()) == {"original": "ab", "reversed": "ba"}


def test_summarize_cuts_data_urls_inside_json() -> None:
    from livepeer.client._cli_io import summarize
    from livepeer.client._files import FileOutput

    big = "data:image/png;base64," + "A" * 400_000
    shown = summarize({"images": [{"url": FileOutput(big)}], "raw": big}, None)
    assert len(json.dumps(shown)) < 600


def test_progress_on_a_terminal(fake_orchs: Start) -> None:
    import pty

    (orch,) = fake_orchs(1)
    master, slave = pty.openpty()
    base = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_")}
    base["LIVEPEER_LOG"] = "warning"  # the progress line must not turn on INFO logging
    proc = subprocess.run(
        [LIVEPEER, "run", "text-reversal", "-i", "text=abc", "--orch-url", orch.url],
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        timeout=60,
        check=False,
        env=base,
    )
    os.close(slave)
    drawn = b""
    with contextlib.suppress(OSError):  # EIO once the pty is drained
        while chunk := os.read(master, 4096):
            drawn += chunk
    os.close(master)
    assert proc.returncode == 0
    text = drawn.decode("utf-8", "replace")
    assert "livepeer run text-reversal" in text
    assert "attempt 1" in text
    assert "s  attempt" in text  # elapsed seconds
    assert orch.url in text  # which orchestrator
    assert " INFO " not in text


def test_no_progress_when_stderr_is_not_a_terminal(fake_orchs: Start) -> None:
    (orch,) = fake_orchs(1)
    proc = cli("run", "text-reversal", "-i", "text=abc", "--orch-url", orch.url)
    assert proc.stderr == ""


def test_info_logging_shows_calls_and_failovers(fake_orchs: Start) -> None:
    a, b = fake_orchs(2)
    a.request_statuses = [503]
    b.request_statuses = [503]
    proc = cli(
        "run", "text-reversal", "-i", "text=abc", "--orch-url", a.url, "--orch-url", b.url,
        env={"LIVEPEER_LOG": "info"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "failover from" in proc.stderr
    assert "HTTP 503" in proc.stderr
    assert "via byoc route, status 200" in proc.stderr


def test_unknown_log_level_is_a_usage_error() -> None:
    proc = cli("run", "x", "--orch-url", "http://127.0.0.1:1", env={"LIVEPEER_LOG": "loud"})
    assert proc.returncode == 2
    assert "LIVEPEER_LOG" in proc.stderr


def test_connection_refused_says_what_to_check(dead_url: str) -> None:
    proc = cli("run", "x", "-i", "a=1", "--orch-url", dead_url, "--timeout", "5")
    assert proc.returncode == 3
    assert f"nothing answered at {dead_url}: is it running" in proc.stderr
    assert "livepeer devnet" in proc.stderr
    # the same for a signer that does not answer (its URL, what to check)
    proc = cli("run", "x", "-i", "a=1", "--signer-url", dead_url, "--timeout", "5")
    assert proc.returncode == 1
    assert dead_url in proc.stderr
    assert "is it running" in proc.stderr
