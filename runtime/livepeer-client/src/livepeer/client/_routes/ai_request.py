"""Built-in AI request bodies as go-livepeer reads them, and the units its orchestrator bills for them.

Pure functions (no I/O). ``prepare`` fills what the Go gateway fills before it selects orchestrators
(``server/ai_process.go`` at 176aa415); ``billed_units`` is ``outPixels`` of ``handleAIRequest``
(``server/ai_http.go:1402-1574``), which the client sends to the signer as ``inPixels`` so that the signer's
balance for a state chain tracks what the orchestrator debits.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from pathlib import Path

from livepeer.client._errors import ConfigError

__all__ = ["DEFAULT_MODELS", "billed_units", "image_size", "model_field", "prepare"]

# server/ai_process.go:32-41 (default*ModelID); the gateway routes a request without a model to these.
DEFAULT_MODELS: Mapping[str, str] = {
    "text-to-image": "stabilityai/sdxl-turbo",
    "image-to-image": "stabilityai/sdxl-turbo",
    "image-to-video": "stabilityai/stable-video-diffusion-img2vid-xt",
    "upscale": "stabilityai/stable-diffusion-x4-upscaler",
    "audio-to-text": "openai/whisper-large-v3",
    "llm": "meta-llama/llama-3.1-8B-Instruct",
    "segment-anything-2": "facebook/sam2-hiera-large",
    "image-to-text": "Salesforce/blip-image-captioning-large",
    "text-to-speech": "parler-tts/parler-tts-large-v1",
}
# ai_process.go:1164-1166: the gateway's max_tokens when a request sets none.
DEFAULT_MAX_TOKENS = 256
# ai_http.go:1488-1489: frames of stable-video-diffusion-img2vid-xt, the image-to-video billing unit.
IMAGE_TO_VIDEO_FRAMES = 25
_IMAGE_PIPELINES = ("image-to-image", "upscale", "segment-anything-2", "image-to-text")


def model_field(pipeline: str) -> str:
    """The body key the orchestrator reads the model from: ``model`` for llm (runner.gen.go:292)."""
    return "model" if pipeline == "llm" else "model_id"


def _set(payload: Mapping[str, object], name: str) -> bool:
    return payload.get(name) is not None


def prepare(
    pipeline: str, payload: Mapping[str, object] | None, model: str | None
) -> tuple[dict[str, object], str]:
    """The body to send and the model to select orchestrators by.

    go-livepeer's orchestrator dereferences the model field without a nil check (``ai_http.go:1406``,
    ``:1509``): a body without it kills the handler and the connection. So the model is always sent, the
    gateway's per-pipeline default when neither ``model`` nor the body names one.
    """
    body: dict[str, object] = dict(payload or {})
    key = model_field(pipeline)
    if pipeline == "llm" and "model_id" in body and key not in body:
        raise ConfigError("llm reads the model from input['model'], not input['model_id']")
    named = body.get(key)
    if named is not None and not isinstance(named, str):
        raise ConfigError(f"input[{key!r}] must be a string")
    if model and named and named != model:
        raise ConfigError(f"model={model!r} and input[{key!r}]={named!r} disagree")
    chosen = model or named or DEFAULT_MODELS.get(pipeline, "")
    if chosen:
        body[key] = chosen
    if pipeline == "text-to-image":
        # ai_process.go:213-229
        if not _set(body, "height"):
            body["height"] = 512
        if not _set(body, "width"):
            body["width"] = 512
        _clamp_images(body)
    elif pipeline == "image-to-image":
        _clamp_images(body)  # ai_process.go:346-351
    elif pipeline == "image-to-video":
        if not _set(body, "height"):
            body["height"] = 576  # ai_process.go:505-512
        if not _set(body, "width"):
            body["width"] = 1024
    elif pipeline == "llm":
        messages = body.get("messages")
        # The Go gateway refuses these (ai_mediaserver.go:315-319); the orchestrator would run them.
        if not isinstance(messages, list) or not messages:
            raise ConfigError("llm needs input['messages'], a non-empty list")
        if not _set(body, "max_tokens"):
            body["max_tokens"] = DEFAULT_MAX_TOKENS
    elif pipeline == "text-to-speech" and not isinstance(body.get("text"), str):
        # *v.Text is dereferenced unchecked (ai_http.go:1569): a missing text drops the connection.
        raise ConfigError("text-to-speech needs input['text'], a string")
    return body, chosen


def _clamp_images(body: dict[str, object]) -> None:
    n = body.get("num_images_per_prompt")
    body["num_images_per_prompt"] = max(1, n) if isinstance(n, int) else 1


def billed_units(pipeline: str, body: Mapping[str, object]) -> int | None:
    """``outPixels`` the orchestrator will debit for ``body`` (None when it cannot be known here)."""

    def num(name: str, default: int) -> int:
        value = body.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    if pipeline == "text-to-image":
        return num("height", 512) * num("width", 512) * num("num_images_per_prompt", 1)
    if pipeline == "image-to-video":
        return num("height", 576) * num("width", 1024) * IMAGE_TO_VIDEO_FRAMES
    if pipeline == "llm":
        return num("max_tokens", DEFAULT_MAX_TOKENS)
    if pipeline == "text-to-speech":
        text = body.get("text")
        return 1000 * len(text) if isinstance(text, str) else None
    if pipeline in _IMAGE_PIPELINES:
        size = image_size(_file_bytes(body.get("image")))
        if size is None:
            return None
        pixels = size[0] * size[1]
        return pixels * num("num_images_per_prompt", 1) if pipeline == "image-to-image" else pixels
    if pipeline == "audio-to-text":
        seconds = _wav_seconds(_file_bytes(body.get("audio")))
        return seconds * 1000 if seconds else None
    return None


def _file_bytes(value: object) -> bytes | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Path):
        # The whole file: a JPEG's frame header can follow up to 64 KiB per EXIF/ICC/MPF segment, and a
        # prefix that misses it bills one unit for the whole image. The multipart body reads it whole anyway.
        try:
            return value.read_bytes()
        except OSError:
            return None
    return None


def image_size(data: bytes | None) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF or JPEG, the formats go-livepeer decodes (``ai/worker/b64.go:7-9``)."""
    if not data:
        return None
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 <= len(data) and data[i] == 0xFF:
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def _wav_seconds(data: bytes | None) -> int | None:
    if not data:
        return None
    import wave

    buf = io.BytesIO(data)
    try:
        with wave.open(buf) as w:
            rate = w.getframerate()
            # wave.open stops right after the data chunk's header.
            start = buf.tell()
            size = struct.unpack("<I", data[start - 4 : start])[0]
            if size in (0, 0xFFFFFFFF):
                # A WAV written to a pipe (ffmpeg's wavenc) keeps these placeholders; ffmpeg, which measures
                # the duration for the orchestrator (wavdec.c), reads them as "up to the end of the file".
                # Taken literally, 0xFFFFFFFF would buy hours of credit for seconds of audio.
                size = len(data) - start
            frames = size // (w.getnchannels() * w.getsampwidth())
            return int(frames / rate) if rate else None
    # RuntimeError: a chunk whose length runs past the RIFF chunk (chunk.Chunk.seek).
    except (wave.Error, EOFError, struct.error, RuntimeError):
        return None
