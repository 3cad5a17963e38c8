"""Request bodies as go-livepeer decodes them: ``encoding/json`` into the runner's Go structs, multipart forms
through oapi-codegen's ``BindMultipart``, and ``image.DecodeConfig`` for the billed pixel counts.

Only what the AI routes can observe is emulated: which bodies decode, the resulting field values, and the
first line of the error text (the devnet answers ``400`` with it, as ``server/ai_http.go:974-977`` does).
Struct and field tables come from ``ai/worker/runner.gen.go`` (at 176aa415).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

__all__ = [
    "STRUCTS",
    "DecodeError",
    "GoStruct",
    "audio_seconds",
    "decode_json",
    "decode_multipart",
    "image_config",
]


class DecodeError(Exception):
    """The body did not decode; ``str(exc)`` is go-livepeer's error text."""


@dataclass(frozen=True)
class GoStruct:
    """A request struct of ``runner.gen.go``: Go type name and JSON field -> Go type."""

    name: str
    fields: dict[str, str]
    multipart: bool = False
    files: frozenset[str] = field(default_factory=frozenset)


_LLM_MESSAGE = {"content": "string", "role": "string"}

# runner.gen.go:50-198 (multipart bodies) and :289-297, :406-451 (JSON bodies).
STRUCTS: dict[str, GoStruct] = {
    "text-to-image": GoStruct(
        "TextToImageParams",
        {
            "guidance_scale": "float32",
            "height": "int",
            "loras": "string",
            "model_id": "string",
            "negative_prompt": "string",
            "num_images_per_prompt": "int",
            "num_inference_steps": "int",
            "prompt": "string",
            "safety_check": "bool",
            "seed": "int",
            "width": "int",
        },
    ),
    "llm": GoStruct(
        "LLMRequest",
        {
            "max_tokens": "int",
            "messages": "[]LLMMessage",
            "model": "string",
            "stream": "bool",
            "temperature": "float32",
            "top_k": "int",
            "top_p": "float32",
        },
    ),
    "text-to-speech": GoStruct(
        "TextToSpeechParams", {"description": "string", "model_id": "string", "text": "string"}
    ),
    "image-to-image": GoStruct(
        "BodyGenImageToImage",
        {
            "guidance_scale": "float32",
            "image": "file",
            "image_guidance_scale": "float32",
            "loras": "string",
            "model_id": "string",
            "negative_prompt": "string",
            "num_images_per_prompt": "int",
            "num_inference_steps": "int",
            "prompt": "string",
            "safety_check": "bool",
            "seed": "int",
            "strength": "float32",
        },
        multipart=True,
        files=frozenset({"image"}),
    ),
    "image-to-video": GoStruct(
        "BodyGenImageToVideo",
        {
            "fps": "int",
            "height": "int",
            "image": "file",
            "model_id": "string",
            "motion_bucket_id": "int",
            "noise_aug_strength": "float32",
            "num_inference_steps": "int",
            "safety_check": "bool",
            "seed": "int",
            "width": "int",
        },
        multipart=True,
        files=frozenset({"image"}),
    ),
    "upscale": GoStruct(
        "BodyGenUpscale",
        {
            "image": "file",
            "model_id": "string",
            "num_inference_steps": "int",
            "prompt": "string",
            "safety_check": "bool",
            "seed": "int",
        },
        multipart=True,
        files=frozenset({"image"}),
    ),
    "audio-to-text": GoStruct(
        "BodyGenAudioToText",
        {
            "audio": "file",
            "metadata": "string",
            "model_id": "string",
            "return_timestamps": "string",
        },
        multipart=True,
        files=frozenset({"audio"}),
    ),
    "segment-anything-2": GoStruct(
        "BodyGenSegmentAnything2",
        {
            "box": "string",
            "image": "file",
            "mask_input": "string",
            "model_id": "string",
            "multimask_output": "bool",
            "normalize_coords": "bool",
            "point_coords": "string",
            "point_labels": "string",
            "return_logits": "bool",
        },
        multipart=True,
        files=frozenset({"image"}),
    ),
    "image-to-text": GoStruct(
        "BodyGenImageToText",
        {"image": "file", "model_id": "string", "prompt": "string"},
        multipart=True,
        files=frozenset({"image"}),
    ),
}

_INT64 = (-(1 << 63), (1 << 63) - 1)
_FLOAT32_MAX = 3.4028234663852886e38


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number_text(value: object) -> str:
    return json.dumps(value)


def _assign(go_type: str, value: object, path: str) -> tuple[object, DecodeError | None]:
    """Go's unmarshal of one value: (stored value, first type error)."""
    if value is None:
        return None, None  # null leaves pointers nil and values untouched
    kind = _json_kind(value)

    def mismatch(detail: str = "") -> DecodeError:
        what = f"number {_number_text(value)}" if detail == "number" else kind
        return DecodeError(
            f"json: cannot unmarshal {what} into Go struct field {path} of type {go_type}"
        )

    if go_type == "string":
        return (value, None) if kind == "string" else (None, mismatch())
    if go_type == "bool":
        return (value, None) if kind == "bool" else (None, mismatch())
    if go_type == "int":
        if kind != "number":
            return None, mismatch()
        if isinstance(value, float) and not value.is_integer():
            return None, mismatch("number")
        as_int = int(value)  # type: ignore[call-overload]
        if not _INT64[0] <= as_int <= _INT64[1]:
            return None, mismatch("number")
        return as_int, None
    if go_type == "float32":
        if kind != "number":
            return None, mismatch()
        if abs(float(value)) > _FLOAT32_MAX:  # type: ignore[arg-type]
            return None, mismatch("number")
        return float(value), None  # type: ignore[arg-type]
    if go_type == "[]LLMMessage":
        if kind != "array":
            return None, mismatch()
        out: list[dict[str, object]] = []
        first: DecodeError | None = None
        for item in value:  # type: ignore[attr-defined]
            if item is None:
                out.append({})
                continue
            if not isinstance(item, dict):
                first = first or DecodeError(
                    f"json: cannot unmarshal {_json_kind(item)} into Go struct field "
                    f"{path} of type worker.LLMMessage"
                )
                continue
            msg, err = _fill(item, _LLM_MESSAGE, path)
            first = first or err
            out.append(msg)
        return out, first
    return value, None


def _match(keys: dict[str, str], name: str) -> str | None:
    # encoding/json prefers an exact key and falls back to a case-insensitive match.
    if name in keys:
        return name
    folded = name.casefold()
    return next((k for k in keys if k.casefold() == folded), None)


def _fill(
    obj: dict[str, Any], fields: dict[str, str], struct_name: str
) -> tuple[dict[str, object], DecodeError | None]:
    out: dict[str, object] = {}
    first: DecodeError | None = None
    for key, value in obj.items():
        name = _match(fields, key)
        if name is None:
            continue  # unknown fields are ignored
        stored, err = _assign(fields[name], value, f"{struct_name}.{name}")
        if err is not None:
            first = first or err
        elif stored is not None:
            out[name] = stored
    return out, first


def decode_json(body: bytes, struct: GoStruct) -> dict[str, object]:
    """``json.NewDecoder(r.Body).Decode(&req)`` (``server/utils.go:13-15``): the fields that were set.

    The decoder reads one JSON value and ignores what follows it; absent and null fields stay unset (nil).
    """
    text = body.decode("utf-8", "replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise DecodeError("EOF")
    try:
        value, _end = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(stripped):
            raise DecodeError("unexpected EOF") from None
        char = stripped[exc.pos]
        raise DecodeError(f"invalid character {char!r} looking for beginning of value") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(
            f"json: cannot unmarshal {_json_kind(value)} into Go value of type worker.{struct.name}"
        )
    out, err = _fill(value, struct.fields, struct.name)
    if err is not None:
        raise err
    return out


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _bind_string(go_type: str, text: str) -> object:
    """oapi-codegen ``BindStringToObject`` (runtime v1.1.1 bindstring.go) for scalar fields."""
    if go_type == "int":
        try:
            value = int(text, 10) if text.strip() == text and text else int("x")
        except ValueError:
            raise DecodeError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        if not _INT64[0] <= value <= _INT64[1]:
            raise DecodeError(f'strconv.ParseInt: parsing "{text}": value out of range')
        return value
    if go_type == "float32":
        try:
            value_f = float(text)
        except ValueError:
            raise DecodeError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None
        if abs(value_f) > _FLOAT32_MAX:
            raise DecodeError(f"value '{text}' overflows destination of type: float32")
        return value_f
    if go_type == "bool":
        if text in _GO_TRUE:
            return True
        if text in _GO_FALSE:
            return False
        raise DecodeError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
    return text


def decode_multipart(body: bytes, content_type: str, struct: GoStruct) -> dict[str, object]:
    """``r.MultipartReader()`` + ``runtime.BindMultipart`` (``server/utils.go:18-24``).

    Text fields bind with ``BindStringToObject``; file fields hold their bytes. Nothing is required: a
    missing field stays unset, a missing file is empty (``types.File`` zero value).
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in ("multipart/form-data", "multipart/mixed"):
        raise DecodeError("request Content-Type isn't multipart/form-data")
    if "boundary=" not in content_type:
        raise DecodeError("no multipart boundary param in Content-Type")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise DecodeError("multipart: NextPart: EOF")
    out: dict[str, object] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name not in struct.fields or name in out:
            continue  # Go binds the first value of each known field
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        go_type = struct.fields[name]
        if go_type == "file":
            out[name] = raw
        else:
            out[name] = _bind_string(go_type, raw.decode("utf-8", "replace"))
    return out


def image_config(data: bytes) -> tuple[int, int]:
    """(width, height) as ``image.DecodeConfig`` reads them for the formats go-livepeer links in
    (png, jpeg, gif: ``ai/worker/b64.go:7-9``); DecodeError("image: unknown format") otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_config(data)
    raise DecodeError("image: unknown format")


def _jpeg_config(data: bytes) -> tuple[int, int]:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise DecodeError("invalid JPEG format: missing 0xff marker start")
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC1, 0xC2) and i + 9 <= len(data):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    raise DecodeError("unexpected EOF")


def audio_seconds(data: bytes) -> int:
    """Whole seconds of audio, ``CalculateAudioDuration`` (``common/util.go:467-487``): lpms's
    ``GetCodecInfoBytes`` with libavformat reading a pipe (PyAV here, the same library).

    The client pays by the same measure, so this is that function (``_wire.audio_seconds``): the devnet's own
    WAV-only reading refused the MP3, FLAC, M4A and WebM audio the real orchestrator times.
    tests/unit/client/test_audio_timing.py pins it against lpms's arithmetic.
    """
    from livepeer.devnet._wire import audio_seconds as lpms_seconds

    seconds = lpms_seconds(data)
    if not seconds:
        raise DecodeError("audio duration calculation failed")
    return seconds
