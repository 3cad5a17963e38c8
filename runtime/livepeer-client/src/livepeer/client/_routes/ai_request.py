"""Built-in AI request bodies as go-livepeer reads them, and the units its orchestrator bills for them.

Pure functions (no I/O). ``prepare`` fills what the Go gateway fills before it selects orchestrators
(``server/ai_process.go`` at 176aa415); ``billed_units`` is ``outPixels`` of ``handleAIRequest``
(``server/ai_http.go:1402-1574``), which the client sends to the signer as ``inPixels`` so that the signer's
balance for a state chain tracks what the orchestrator debits.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from pathlib import Path

from livepeer.client._errors import ConfigError, ValidationError
from livepeer.client._files import is_file

__all__ = [
    "DEFAULT_MODELS",
    "audio_seconds",
    "billed_units",
    "image_size",
    "model_field",
    "prepare",
]

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
# The *int fields each bill is made of (runner.gen.go): the Go gateway decodes the caller's body into its
# struct before it pays (ai_mediaserver.go:160-164), so any other value is its 400; sent on, it would be the
# orchestrator's 400 after the tickets were made, and a float here used to be replaced by the default.
_BILLED_INTS: Mapping[str, tuple[str, ...]] = {
    "text-to-image": ("height", "width", "num_images_per_prompt"),
    "image-to-image": ("num_images_per_prompt",),
    "image-to-video": ("height", "width"),
    "llm": ("max_tokens",),
}
# lpms ffmpeg/ffmpeg.go:325-327 (c44af725, go-livepeer's go.mod): formats whose duration lpms estimates from
# the audio bitrate when ffmpeg reports none, which through a pipe is every WAV and most MP3 and ADTS AAC.
_BITRATE_TIMED = ("mp3", "wav", "aac")
_AV_TIME_BASE = 1_000_000  # libavutil/avutil.h: AVFormatContext.duration is in microseconds


def model_field(pipeline: str) -> str:
    """The body key the orchestrator reads the model from: ``model`` for llm (runner.gen.go:292)."""
    return "model" if pipeline == "llm" else "model_id"


def _set(payload: Mapping[str, object], name: str) -> bool:
    return payload.get(name) is not None


def prepare(
    pipeline: str, payload: Mapping[str, object] | None, model: str | None, *, stream: bool = False
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
    if pipeline in (*_IMAGE_PIPELINES, "image-to-video") and not is_file(body.get("image")):
        # The Go gateway reads the image before it pays (ai_process.go:370-376 and the other submit*
        # functions); sent on, a missing image is the orchestrator's 400 "image: unknown format".
        raise ValidationError(
            f"{pipeline} needs input['image'], an image file (bytes, a path or a binary file object)"
        )
    for name in _BILLED_INTS.get(pipeline, ()):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValidationError(f"input[{name!r}] must be an integer, not {type(value).__name__}")
    if pipeline == "text-to-image":
        # ai_process.go:213-229
        if not _set(body, "height"):
            body["height"] = 512
        if not _set(body, "width"):
            body["width"] = 512
        _clamp_images(body)
    elif pipeline == "image-to-image":
        _clamp_images(body)  # ai_process.go:346-351
    elif pipeline == "llm":
        messages = body.get("messages")
        # The Go gateway refuses these (ai_mediaserver.go:315-319); the orchestrator would run them.
        if not isinstance(messages, list) or not messages:
            raise ConfigError("llm needs input['messages'], a non-empty list")
        if not _set(body, "max_tokens"):
            body["max_tokens"] = DEFAULT_MAX_TOKENS
        wanted = body.get("stream")
        if wanted is not None and wanted is not stream:
            # The body's `stream` decides the orchestrator's answer (ai_http.go:1696-1726): one that
            # disagreed with the verb got an event stream parsed as one reply, or the reverse.
            verb = "gw.stream()" if stream else "gw.run()"
            raise ValidationError(
                f"input['stream']={wanted!r} in {verb}: the verb decides, gw.stream() for a streamed "
                "reply and gw.run() for one reply; leave 'stream' out of the input"
            )
    elif pipeline == "text-to-speech" and not isinstance(body.get("text"), str):
        # *v.Text is dereferenced unchecked (ai_http.go:1569): a missing text drops the connection.
        raise ConfigError("text-to-speech needs input['text'], a string")
    elif pipeline == "audio-to-text":
        _time_audio(body)
    return body, chosen


def _time_audio(body: dict[str, object]) -> None:
    """The Go gateway times the audio before it selects orchestrators and refuses what it cannot time
    (``submitAudioToText``, ai_process.go:952-959); the orchestrator does the same to bill it (ai_http.go:1500-1505),
    and the runner is told the duration (ai_process.go:961-966) instead of running ffprobe again."""
    audio = body.get("audio")
    if audio is None:
        raise ValidationError("audio-to-text needs input['audio'], an audio file")
    seconds = audio_seconds(_file_bytes(audio))
    if seconds == 0:
        raise ValidationError(
            "input['audio']: go-livepeer cannot time this audio and refuses it: it bills whole seconds as "
            "ffmpeg measures them through a pipe, and this is shorter than a second, not audio ffmpeg "
            "reads, or a format it cannot time without seeking (such as Ogg)"
        )
    if seconds is not None:
        # encodeReqMetadata (ai_process.go:1695-1698): json.Marshal of map[string]string, no spaces.
        body["metadata"] = json.dumps({"duration": str(seconds)}, separators=(",", ":"))


def _clamp_images(body: dict[str, object]) -> None:
    n = body.get("num_images_per_prompt")  # None or an int (_BILLED_INTS)
    body["num_images_per_prompt"] = max(1, n) if isinstance(n, int) else 1


def billed_units(pipeline: str, body: Mapping[str, object]) -> int | None:
    """``outPixels`` the orchestrator will debit for ``body`` (None when it cannot be known here)."""

    def num(name: str, default: int) -> int:
        value = body.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    if pipeline == "text-to-image":
        return num("height", 512) * num("width", 512) * num("num_images_per_prompt", 1)
    if pipeline == "image-to-video":
        # The Go gateway writes the body first and fills these only to size the payment (ai_process.go:
        # 488-516), as the orchestrator does to bill it (ai_http.go:1479-1491): they are not sent.
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
        seconds = audio_seconds(_file_bytes(body.get("audio")))
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


def audio_seconds(data: bytes | None) -> int | None:
    """Whole seconds go-livepeer bills ``data`` for; 0 when it cannot time it (it refuses the request);
    None when this process cannot tell.

    go-livepeer times audio with lpms's ``GetCodecInfoBytes`` (common/util.go:467-487): libavformat reads the
    bytes from a pipe, so it knows no file size, and a duration it cannot find is estimated from the audio
    bitrate for MP3, WAV and ADTS AAC only (lpms ffmpeg/ffmpeg.go:301-328, ffmpeg/extras.c:147-170). With
    PyAV installed (the ``live`` extra) the same libavformat does the same here; without it only WAV is
    timed (by that bitrate rule), and anything else is unknown.
    """
    if data is None:
        return None
    try:
        return _ffmpeg_seconds(data)
    except ImportError:
        return _wav_seconds(data)


class _Pipe:
    """Bytes that can only be read: what ffmpeg gets from lpms's ``os.Pipe``. Without ``seek`` and ``tell``
    PyAV gives libavformat a stream with no size, so every duration ffmpeg derives from the file size is
    missing here as it is in Go."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)


def _ffmpeg_seconds(data: bytes) -> int:
    import av

    try:
        with av.open(_Pipe(data), "r") as container:
            duration = container.duration  # None is AV_NOPTS_VALUE
            # C's integer division truncates toward zero (extras.c:168); Python's // floors.
            seconds = int(duration / _AV_TIME_BASE) if duration is not None else 0
            if seconds == 0 and container.format.name in _BITRATE_TIMED:
                stream = container.streams.best("audio")
                # PyAV reads an unset bit_rate as None; a negative one gives a negative count, clamped below.
                if stream is not None and stream.codec_context.bit_rate:
                    seconds = len(data) * 8 // stream.codec_context.bit_rate
    except (av.FFmpegError, OSError, ValueError, EOFError):
        # lpms ignores the open error and reports no duration: "audio duration calculation failed".
        return 0
    return max(seconds, 0)


def _wav_seconds(data: bytes) -> int | None:
    """Without PyAV: a PCM WAV as lpms times it. Through a pipe ffmpeg's WAV demuxer never sets a duration
    (wavdec.c uses the data chunk's size only when it fits in the file's size, which a pipe does not have),
    so lpms divides the whole input, header included, by the bitrate; the declared sizes do not count."""
    import wave

    try:
        with wave.open(io.BytesIO(data)) as w:
            byte_rate = w.getframerate() * w.getnchannels() * w.getsampwidth()
    # RuntimeError: a chunk whose length runs past the RIFF chunk (chunk.Chunk.seek).
    except (wave.Error, EOFError, struct.error, RuntimeError):
        return None
    # A zero sample rate: ffmpeg refuses the file (riffdec.c), so lpms reports no duration.
    return len(data) // byte_rate if byte_rate else 0
