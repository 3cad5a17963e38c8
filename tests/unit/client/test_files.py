from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest

from livepeer.client import FileOutput, ValidationError
from livepeer.client._files import is_file, multipart_parts, replace_urls


def test_data_url_decodes_locally(tmp_path: Path) -> None:
    url = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    out = FileOutput(url)
    assert out.read() == b"\x89PNG"
    assert out.content_type == "image/png"
    assert out.save(tmp_path / "x.png").read_bytes() == b"\x89PNG"
    assert "base64" not in repr(out)


@pytest.mark.anyio
async def test_lazy_fetch_once() -> None:
    calls: list[str] = []

    def fetch(url: str) -> tuple[bytes, str | None]:
        calls.append(url)
        return b"abc", "text/plain"

    out = FileOutput("https://orch/x.png", fetch=fetch)
    assert calls == []
    assert out.read() == b"abc"
    assert await out.aread() == b"abc"
    assert calls == ["https://orch/x.png"]
    assert out.content_type == "text/plain"


def test_no_content_no_url() -> None:
    with pytest.raises(ValidationError):
        FileOutput().read()


def test_replace_urls_only_string_url_members() -> None:
    value = {"images": [{"url": "data:,hi", "seed": 1}], "url": 5, "nested": {"url": "data:,x"}}
    out = replace_urls(value, FileOutput)
    assert isinstance(out, dict)
    assert isinstance(out["images"][0]["url"], FileOutput)
    assert out["images"][0]["seed"] == 1
    assert out["url"] == 5
    assert out["nested"]["url"].read() == b"x"


def test_is_file_never_guesses_strings(tmp_path: Path) -> None:
    assert is_file(tmp_path)
    assert is_file(b"x")
    assert is_file(io.BytesIO(b"x"))
    assert not is_file(str(tmp_path))
    assert not is_file(1)


def test_multipart_parts(tmp_path: Path) -> None:
    p = tmp_path / "a.wav"
    p.write_bytes(b"RIFF")
    data, files = multipart_parts(
        {
            "audio": p,
            "raw": b"zz",
            "fo": io.BytesIO(b"yy"),
            "n": 3,
            "flag": True,
            "s": "t",
            "none": None,
        }
    )
    assert data == {"n": "3", "flag": "true", "s": "t"}
    assert files["audio"] == ("a.wav", b"RIFF", "audio/x-wav")
    assert files["raw"][1] == b"zz"
    assert files["fo"][1] == b"yy"


def test_text_file_object_rejected() -> None:
    with pytest.raises(ValidationError, match="binary"):
        multipart_parts({"f": io.StringIO("x")})
