"""End to end: `livepeer generate` from a devnet runner's /openapi.json, import the package, call through the
devnet with the real client, and type-check the package with mypy --strict."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from livepeer.capabilities.llm import LLMMessage
from livepeer.client import Gateway
from livepeer.client.cli import main as livepeer_main
from livepeer.devnet.pytest_plugin import devnet  # noqa: F401

USAGE = """\
from typing_extensions import assert_type

from livepeer.client import Gateway
from mycaps import Capabilities, EventStream
from mycaps.text_reversal import ReversalOutput
from mycaps.token_stream import Token


def use(gw: Gateway) -> None:
    caps = Capabilities(gw)
    assert_type(caps.text_reversal.run(text="x"), ReversalOutput)
    assert_type(caps.token_stream.stream(text="a b"), EventStream[Token])
    caps.text_reversal.run(text=1)  # type: ignore[arg-type]
"""


@pytest.fixture(scope="module")
def mycaps(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:  # noqa: F811
    base = tmp_path_factory.mktemp("user")
    out = base / "mycaps"
    for capability in ("text-reversal", "token-stream"):
        url = devnet.net.workers[capability].rstrip("/") + "/openapi.json"
        assert livepeer_main(["generate", "--from", url, "--out", str(out)]) == 0
    sys.path.insert(0, str(base))
    try:
        yield importlib.import_module("mycaps")
    finally:
        sys.path.remove(str(base))
        for name in [m for m in sys.modules if m == "mycaps" or m.startswith("mycaps.")]:
            del sys.modules[name]


def test_generated_package_calls_through_the_devnet(mycaps: ModuleType, devnet: Any) -> None:  # noqa: F811
    with Gateway(token=devnet.token) as gw:
        caps = mycaps.Capabilities(gw)
        out = caps.text_reversal.run(text="hello")
        assert type(out).__name__ == "ReversalOutput"
        assert out.reversed == "olleh"
        with caps.token_stream.stream(text="one two three") as tokens:
            got = [(t.index, t.token) for t in tokens]
        assert got == [(0, "one"), (1, "two"), (2, "three")]
        with pytest.raises(mycaps.InputValidationError, match="text"):
            caps.text_reversal.run(text=None)


def test_builtin_wrappers_through_the_devnet(devnet: Any) -> None:  # noqa: F811
    with Gateway(token=devnet.token) as gw:
        out = gw.capabilities.text_to_image.run(prompt="a cat", model_id="", width=64, height=64)
        png = out.images[0].url.read()
        assert png.startswith(b"\x89PNG")
        assert gw.capabilities.text_reversal.run(text="abc").reversed == "cba"
        assert gw.capabilities.sentiment.run(text="great, I love it").label == "positive"
        msgs = [LLMMessage(role="user", content="hello there")]
        answer = gw.capabilities.llm.run(messages=msgs)
        assert answer.choices[0].message is not None
        assert "hello there" in answer.choices[0].message.content
        with gw.capabilities.llm.stream(messages=msgs) as chunks:
            text = "".join(c.choices[0].delta.content for c in chunks if c.choices[0].delta)
        assert "hello there" in text


def test_generated_package_passes_mypy_strict(mycaps: ModuleType) -> None:
    base = Path(mycaps.__file__).parent.parent
    (base / "usage_check.py").write_text(USAGE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(base / ".mypy_cache"),
            "mycaps",
            "usage_check.py",
        ],
        capture_output=True,
        text=True,
        cwd=base,
        check=False,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.anyio
async def test_live_wrappers_start_sessions_through_the_devnet(devnet: Any) -> None:  # noqa: F811
    import anyio

    async with Gateway(token=devnet.token) as gw:
        with anyio.fail_after(60):
            async with gw.capabilities.live_video_to_video.live(model="noop") as session:
                assert session.manifest_id
                assert session.orchestrator in devnet.orchestrators
            async with gw.capabilities.live_grayscale.live(params={"strength": 1}) as session:
                assert session.orchestrator in devnet.orchestrators


# -- a user's FastAPI container as a BYOC worker: routes, path parameters, uploads, SSE ------------------


@pytest.fixture(scope="module")
def image_lab(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:  # noqa: F811
    """tests/codegen/fastapi_app.py served on loopback and registered as capability ``image-lab`` with every
    devnet orchestrator, then `livepeer generate --from <its /openapi.json>` imported as ``labcaps``."""
    import httpx
    from anyio.from_thread import start_blocking_portal

    from livepeer.runner.hosting import hosted

    from .fastapi_app import app

    base = tmp_path_factory.mktemp("lab")
    secrets = devnet.info["orchestrator_secrets"]
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(hosted(app)) as srv:
        for orch, secret in zip(devnet.orchestrators, secrets, strict=True):
            body = {"name": "image-lab", "url": srv.url, "capacity": 2, "price_per_unit": 0}
            reply = httpx.post(
                f"{orch}/capability/register",
                json=body,
                headers={"Authorization": secret},
                verify=False,
                timeout=10,
            )
            reply.raise_for_status()
        url = srv.url.rstrip("/") + "/openapi.json"
        assert livepeer_main(["generate", "--from", url, "--out", str(base / "labcaps")]) == 0
        sys.path.insert(0, str(base))
        try:
            yield importlib.import_module("labcaps")
        finally:
            sys.path.remove(str(base))
            for name in [m for m in sys.modules if m.split(".")[0] == "labcaps"]:
                del sys.modules[name]
            for orch, secret in zip(devnet.orchestrators, secrets, strict=True):
                httpx.post(
                    f"{orch}/capability/unregister",
                    content=b"image-lab",
                    headers={"Authorization": secret},
                    verify=False,
                    timeout=10,
                )


def test_fastapi_container_routes_through_the_devnet(image_lab: ModuleType, devnet: Any) -> None:  # noqa: F811
    import datetime as dt
    import uuid

    job = {
        "id": uuid.UUID(int=5),
        "at": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
        "source": "https://example.com/in.png",
    }
    with Gateway(token=devnet.token) as gw:
        lab = image_lab.Capabilities(gw).image_lab
        done = lab.items(item_id=42, note="hello", **job)
        assert done.item == 42
        assert done.job.id == job["id"]
        assert done.job.note == "hello"
        stored = lab.upload(
            bucket="my bucket", file=b"12345", extra=[b"ab", b"abc"], caption="three files"
        )
        assert stored.model_dump() == {
            "bucket": "my bucket",
            "caption": "three files",
            "sizes": [5, 2, 3],
            "name": "file",
        }
        with lab.chat(room="r1", note="one two", **job) as events:
            got = list(events)
        assert got == [{"room": "r1", "i": 0, "word": "one"}, {"room": "r1", "i": 1, "word": "two"}]
        with pytest.raises(image_lab.InputValidationError, match="bucket"):
            lab.upload(bucket="../etc", file=b"x")
