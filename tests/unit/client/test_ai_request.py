"""Built-in AI request bodies and the units they are billed by (``_routes/ai_request.py``).

``billed_units`` is what the client asks the signer to buy credit for (``inPixels``); it must equal the
``outPixels`` go-livepeer's orchestrator debits (``server/ai_http.go:1402-1574``), else a request buys too
little credit (refused as "Insufficient balance") or too much. So every pipeline's count is pinned exactly,
from real media bytes built here: PNG (zlib scanlines, CRC'd chunks), GIF, JPEG segment streams and WAV
files written by the stdlib ``wave`` module (audio timing: test_audio_timing.py). ``prepare`` is pinned body by body against the Go gateway's
defaults and clamps (``server/ai_process.go``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from livepeer.client import ConfigError, ValidationError
from livepeer.client._routes import ai_request
from livepeer.client._routes.ai_request import billed_units, image_size, prepare

from .test_audio_timing import wav

# --- media built in the test ------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    """A complete, decodable 8-bit greyscale PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes(width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def gif(width: int, height: int, version: bytes = b"89a") -> bytes:
    # Header, logical screen descriptor (no global colour table), trailer.
    return b"GIF" + version + struct.pack("<HHBBB", width, height, 0, 0, 0) + b";"


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


APP0 = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
DQT = segment(0xDB, b"\x00" + bytes(range(1, 65)))


def sof(width: int, height: int, marker: int = 0xC0) -> bytes:
    # precision 8, one component (id 1, sampling 1x1, table 0)
    return segment(marker, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")


def jpeg(width: int, height: int, marker: int = 0xC0, before: bytes = APP0 + DQT) -> bytes:
    """SOI, the segments before the frame header, SOF, a scan header and EOI."""
    sos = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    return b"\xff\xd8" + before + sof(width, height, marker) + sos + b"\x00\x00\xff\xd9"


MESSAGES = [{"role": "user", "content": "hi"}]
IMG = b"an image"  # any file will do where only its presence matters

# --- prepare: the model -----------------------------------------------------------------------------

MINIMAL: dict[str, dict[str, object]] = {
    "text-to-image": {"prompt": "p"},
    "image-to-image": {"prompt": "p", "image": IMG},
    "image-to-video": {"image": IMG},
    "upscale": {"prompt": "p", "image": IMG},
    "audio-to-text": {"audio": wav(8000 * 2, 8000)},
    "llm": {"messages": MESSAGES},
    "segment-anything-2": {"image": IMG},
    "image-to-text": {"image": IMG},
    "text-to-speech": {"text": "t"},
}


@pytest.mark.parametrize(
    ("pipeline", "default"),
    [
        # ai_process.go:32-41
        ("text-to-image", "stabilityai/sdxl-turbo"),
        ("image-to-image", "stabilityai/sdxl-turbo"),
        ("image-to-video", "stabilityai/stable-video-diffusion-img2vid-xt"),
        ("upscale", "stabilityai/stable-diffusion-x4-upscaler"),
        ("audio-to-text", "openai/whisper-large-v3"),
        ("llm", "meta-llama/llama-3.1-8B-Instruct"),
        ("segment-anything-2", "facebook/sam2-hiera-large"),
        ("image-to-text", "Salesforce/blip-image-captioning-large"),
        ("text-to-speech", "parler-tts/parler-tts-large-v1"),
    ],
)
def test_a_request_without_a_model_gets_the_gateways_default(pipeline: str, default: str) -> None:
    body, chosen = prepare(pipeline, MINIMAL[pipeline], None)
    assert chosen == default
    field = "model" if pipeline == "llm" else "model_id"
    assert body[field] == default
    # llm reads `model` (runner.gen.go:292); a stray model_id would be ignored by the orchestrator.
    assert ("model_id" in body) is (pipeline != "llm")
    # An empty model names nothing: still the default.
    assert prepare(pipeline, {**MINIMAL[pipeline], field: ""}, "")[1] == default


def test_the_model_argument_or_the_body_names_the_model() -> None:
    body, chosen = prepare("upscale", {"prompt": "p", "image": IMG}, "m/1")
    assert (body, chosen) == ({"prompt": "p", "image": IMG, "model_id": "m/1"}, "m/1")
    body, chosen = prepare("upscale", {"prompt": "p", "image": IMG, "model_id": "m/2"}, None)
    assert (body, chosen) == ({"prompt": "p", "image": IMG, "model_id": "m/2"}, "m/2")
    # Both naming the same model is not a conflict.
    both = {"image": IMG, "model_id": "m/2"}
    assert prepare("upscale", both, "m/2") == (both, "m/2")
    body, chosen = prepare("llm", {"messages": MESSAGES, "model": "m/3"}, None)
    assert chosen == "m/3"
    assert body["model"] == "m/3"
    # An llm body may carry model_id next to model (it is passed through, model is what counts).
    body, chosen = prepare("llm", {"messages": MESSAGES, "model": "m/3", "model_id": "x"}, None)
    assert (chosen, body["model"], body["model_id"]) == ("m/3", "m/3", "x")


def test_a_pipeline_without_a_default_model_sends_no_model_field() -> None:
    body, chosen = prepare("live-video-to-video", {"a": 1}, None)
    assert (body, chosen) == ({"a": 1}, "")
    assert prepare("live-video-to-video", None, "m") == ({"model_id": "m"}, "m")


def test_prepare_copies_the_input() -> None:
    payload: dict[str, object] = {"prompt": "p"}
    body, _ = prepare("text-to-image", payload, None)
    assert payload == {"prompt": "p"}
    assert body is not payload
    assert prepare("text-to-image", None, None)[0]["model_id"] == "stabilityai/sdxl-turbo"


def test_conflicting_or_misplaced_models_are_refused_with_what_was_wrong() -> None:
    with pytest.raises(ConfigError, match=r"model='a' and input\['model_id'\]='b' disagree"):
        prepare("upscale", {"model_id": "b"}, "a")
    with pytest.raises(ConfigError, match=r"model='a' and input\['model'\]='b' disagree"):
        prepare("llm", {"messages": MESSAGES, "model": "b"}, "a")
    with pytest.raises(ConfigError, match=r"input\['model_id'\] must be a string"):
        prepare("upscale", {"model_id": 7}, None)
    with pytest.raises(ConfigError, match=r"input\['model'\] must be a string"):
        prepare("llm", {"messages": MESSAGES, "model": ["m"]}, None)
    with pytest.raises(
        ConfigError, match=r"llm reads the model from input\['model'\], not input\['model_id'\]"
    ):
        prepare("llm", {"messages": MESSAGES, "model_id": "m"}, None)
    # Other pipelines do read model_id.
    assert prepare("text-to-image", {"model_id": "m"}, None)[1] == "m"


# --- prepare: per-pipeline defaults and clamps ------------------------------------------------------


def test_text_to_image_gets_the_gateways_size_and_image_count() -> None:
    # ai_process.go:213-229: 512x512, one image, at least one image.
    body, _ = prepare("text-to-image", {"prompt": "p"}, "m")
    assert body == {
        "prompt": "p",
        "model_id": "m",
        "height": 512,
        "width": 512,
        "num_images_per_prompt": 1,
    }
    # Set values are kept, 0 included (it is set, not missing); None counts as missing.
    body, _ = prepare("text-to-image", {"height": 0, "width": 64, "num_images_per_prompt": 3}, "m")
    assert (body["height"], body["width"], body["num_images_per_prompt"]) == (0, 64, 3)
    body, _ = prepare("text-to-image", {"height": None, "width": None}, "m")
    assert (body["height"], body["width"]) == (512, 512)


@pytest.mark.parametrize(("given", "sent"), [(None, 1), (0, 1), (-4, 1), (1, 1), (5, 5)])
@pytest.mark.parametrize("pipeline", ["text-to-image", "image-to-image"])
def test_the_image_count_is_clamped_to_at_least_one(
    pipeline: str, given: int | None, sent: int
) -> None:
    # ai_process.go:225-229 and :347-351: math.Max(1, n).
    body, _ = prepare(pipeline, {"num_images_per_prompt": given, "image": IMG}, "m")
    assert body["num_images_per_prompt"] == sent


@pytest.mark.parametrize(
    ("pipeline", "name"),
    [
        ("text-to-image", "height"),
        ("text-to-image", "width"),
        ("text-to-image", "num_images_per_prompt"),
        ("image-to-image", "num_images_per_prompt"),
        ("image-to-video", "height"),
        ("image-to-video", "width"),
        ("llm", "max_tokens"),
    ],
)
@pytest.mark.parametrize("value", [2.0, "2", True])
def test_a_billed_count_that_is_not_an_integer_is_refused_before_any_request(
    pipeline: str, name: str, value: object
) -> None:
    # The Go gateway decodes the body into *int fields before it pays (ai_mediaserver.go:160-164).
    payload: dict[str, object] = {name: value, "messages": MESSAGES, "image": IMG}
    with pytest.raises(ValidationError, match=rf"input\['{name}'\] must be an integer, not "):
        prepare(pipeline, payload, "m")


def test_image_to_image_gets_an_image_count_and_no_size() -> None:
    img = png(3, 2)
    body, _ = prepare("image-to-image", {"image": img, "prompt": "p"}, "m")
    assert body == {"image": img, "prompt": "p", "model_id": "m", "num_images_per_prompt": 1}


def test_image_to_video_is_sent_without_the_gateways_size() -> None:
    # ai_process.go:488-516: the body is written before 576x1024 fill in, and that fill only sizes the
    # payment; the orchestrator bills the same size for a body without them (ai_http.go:1479-1491).
    body, _ = prepare("image-to-video", {"image": b"i"}, "m")
    assert body == {"image": b"i", "model_id": "m"}
    assert billed_units("image-to-video", body) == 576 * 1024 * 25
    body, _ = prepare("image-to-video", {"height": 0, "width": 8, "image": IMG}, "m")
    assert (body["height"], body["width"]) == (0, 8)


@pytest.mark.parametrize("pipeline", ["upscale", "segment-anything-2", "image-to-text"])
def test_the_media_pipelines_only_get_a_model(pipeline: str) -> None:
    body, _ = prepare(pipeline, {"prompt": "p", "image": IMG}, "m")
    assert body == {"prompt": "p", "image": IMG, "model_id": "m"}


@pytest.mark.parametrize(
    "pipeline",
    ["image-to-image", "image-to-video", "upscale", "segment-anything-2", "image-to-text"],
)
@pytest.mark.parametrize("image", [None, "https://example.com/cat.png", 7])
def test_an_image_pipeline_without_an_image_file_is_refused_before_any_request(
    pipeline: str, image: object
) -> None:
    # The Go gateway reads the image before it pays (ai_process.go:370-376); strings are never paths.
    payload = {} if image is None else {"image": image}
    with pytest.raises(ValidationError, match=rf"{pipeline} needs input\['image'\], an image file"):
        prepare(pipeline, payload, "m")
    assert prepare(pipeline, {"image": Path("cat.png")}, "m")[0]["image"] == Path("cat.png")


def test_llm_gets_the_gateways_max_tokens() -> None:
    # ai_process.go:1164-1166; the orchestrator refuses a body without max_tokens (ai_http.go:1514-1517).
    body, chosen = prepare("llm", {"messages": MESSAGES}, None)
    assert body == {"messages": MESSAGES, "model": chosen, "max_tokens": 256}
    assert prepare("llm", {"messages": MESSAGES, "max_tokens": 9}, "m")[0]["max_tokens"] == 9
    assert prepare("llm", {"messages": MESSAGES, "max_tokens": None}, "m")[0]["max_tokens"] == 256


@pytest.mark.parametrize(("stream", "wanted"), [(False, True), (True, False), (False, "true")])
def test_an_llm_stream_flag_the_verb_contradicts_is_refused(stream: bool, wanted: object) -> None:
    payload = {"messages": MESSAGES, "stream": wanted}
    with pytest.raises(ValidationError, match=r"input\['stream'\].* the verb decides"):
        prepare("llm", payload, "m", stream=stream)
    # Agreeing with the verb, or left out, it is sent as given; without a verb, `run`'s.
    assert prepare("llm", {"messages": MESSAGES, "stream": False}, "m")[0]["stream"] is False
    assert prepare("llm", {**payload, "stream": stream}, "m", stream=stream)[0]["stream"] is stream
    assert "stream" not in prepare("llm", {"messages": MESSAGES}, "m", stream=stream)[0]


@pytest.mark.parametrize("messages", [None, [], "hi", {"role": "user"}])
def test_llm_without_messages_is_refused(messages: object) -> None:
    payload = {} if messages is None else {"messages": messages}
    with pytest.raises(ConfigError, match=r"llm needs input\['messages'\], a non-empty list"):
        prepare("llm", payload, "m")


@pytest.mark.parametrize("payload", [{}, {"text": None}, {"text": 5}, {"text": b"bytes"}])
def test_text_to_speech_without_text_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"text-to-speech needs input\['text'\], a string"):
        prepare("text-to-speech", payload, "m")


def test_text_to_speech_with_text_is_sent_as_given() -> None:
    assert prepare("text-to-speech", {"text": ""}, "m") == ({"text": "", "model_id": "m"}, "m")


# --- image sizes ------------------------------------------------------------------------------------


def test_png_size_is_read_from_ihdr() -> None:
    assert image_size(png(640, 48)) == (640, 48)
    assert image_size(png(1, 70000)) == (1, 70000)
    # The signature and IHDR's width/height (24 bytes) are enough; fewer is unknown, not an exception.
    head = png(640, 48)[:24]
    assert image_size(head) == (640, 48)
    assert image_size(head[:23]) is None
    assert image_size(b"\x89PNG\r\n\x1a\n") is None


@pytest.mark.parametrize("version", [b"87a", b"89a"])
def test_gif_size_is_read_from_the_screen_descriptor(version: bytes) -> None:
    data = gif(300, 2, version)
    assert image_size(data) == (300, 2)
    assert image_size(data[:10]) == (300, 2)
    assert image_size(data[:9]) is None
    assert image_size(b"GIF90a" + data[6:]) is None


@pytest.mark.parametrize("marker", [0xC0, 0xC1, 0xC2])
def test_jpeg_size_is_read_from_the_frame_header(marker: int) -> None:
    # Baseline, extended sequential and progressive: the three image/jpeg decodes (reader.go).
    assert image_size(jpeg(1920, 1080, marker)) == (1920, 1080)
    assert image_size(jpeg(7, 300, marker, before=b"")) == (7, 300)


def test_jpeg_frame_header_ending_the_data_is_enough() -> None:
    data = b"\xff\xd8" + APP0 + sof(33, 44)
    # Cut right after the width: SOF's height and width are all that is read.
    cut = data[: len(data) - 4]
    assert image_size(cut) == (33, 44)
    assert image_size(cut[:-1]) is None


def test_jpeg_standalone_markers_have_no_length() -> None:
    # TEM, RST0-RST7 and SOI carry no length field (ITU T.81 table B.1); skipping two bytes is right.
    for marker in (0x01, 0xD0, 0xD3, 0xD7, 0xD8):
        before = APP0 + bytes([0xFF, marker]) + DQT
        assert image_size(jpeg(12, 34, before=before)) == (12, 34), hex(marker)


def test_jpeg_other_frame_types_and_broken_streams_are_unknown() -> None:
    # Lossless / arithmetic-coded frames (SOF3, SOF9): image/jpeg refuses them, so does the orchestrator.
    assert image_size(jpeg(5, 5, 0xC3)) is None
    assert image_size(jpeg(5, 5, 0xC9)) is None
    # No frame header before the scan: the entropy-coded data is not a marker.
    assert image_size(b"\xff\xd8" + APP0 + segment(0xDA, b"\x01") + b"\x12\x34" * 8) is None
    # Truncated inside a segment, or a length running past the end.
    full = jpeg(5, 6)
    for cut in (3, 4, 10, len(APP0) + 3, len(APP0) + len(DQT) + 6):
        assert image_size(full[:cut]) is None, cut
    assert image_size(b"\xff\xd8\xff\xe0\xff\xff" + bytes(20)) is None


@pytest.mark.parametrize("data", [None, b"", b"nope", b"\x00" * 64, b"\xff", b"BM" + bytes(60)])
def test_unknown_images_have_no_size(data: bytes | None) -> None:
    assert image_size(data) is None


# --- billed units -----------------------------------------------------------------------------------


def test_text_to_image_is_billed_height_times_width_times_images() -> None:
    # ai_http.go:1411-1426, with the gateway's defaults (what prepare sends).
    assert billed_units("text-to-image", prepare("text-to-image", {}, "m")[0]) == 512 * 512
    assert billed_units("text-to-image", {"height": 64, "width": 48}) == 64 * 48
    assert billed_units("text-to-image", {"height": 64}) == 64 * 512
    assert billed_units("text-to-image", {"width": 48}) == 512 * 48
    assert (
        billed_units("text-to-image", {"height": 3, "width": 5, "num_images_per_prompt": 7}) == 105
    )
    assert billed_units("text-to-image", {"num_images_per_prompt": 4}) == 4 * 512 * 512


def test_only_integers_are_read_as_numbers() -> None:
    # A non-integer field counts as absent; a bool (an int in Python) is not a number either.
    assert billed_units("text-to-image", {"height": "64", "width": 2.5}) == 512 * 512
    assert billed_units("text-to-image", {"height": True, "width": False}) == 512 * 512
    assert billed_units("llm", {"max_tokens": "9"}) == 256


def test_image_to_video_is_billed_25_frames() -> None:
    # ai_http.go:1477-1490: stable-video-diffusion-img2vid-xt's 25 frames.
    assert ai_request.IMAGE_TO_VIDEO_FRAMES == 25
    assert billed_units("image-to-video", {}) == 576 * 1024 * 25
    assert billed_units("image-to-video", {"height": 8, "width": 3}) == 8 * 3 * 25
    body, _ = prepare("image-to-video", {"image": png(9, 9)}, "m")
    # The input image's size does not matter, the output's does.
    assert billed_units("image-to-video", body) == 576 * 1024 * 25


def test_llm_is_billed_max_tokens() -> None:
    # ai_http.go:1514-1520.
    assert billed_units("llm", {"max_tokens": 7}) == 7
    assert billed_units("llm", {}) == 256
    assert billed_units("llm", prepare("llm", {"messages": MESSAGES}, None)[0]) == 256


def test_text_to_speech_is_billed_1000_per_character() -> None:
    # ai_http.go:1569-1571: utf8.RuneCountInString, so characters, not UTF-8 bytes.
    assert billed_units("text-to-speech", {"text": "hello"}) == 5000
    assert billed_units("text-to-speech", {"text": "日本語"}) == 3000
    assert billed_units("text-to-speech", {"text": b"hello"}) is None
    assert billed_units("text-to-speech", {}) is None


@pytest.mark.parametrize("pipeline", ["upscale", "segment-anything-2", "image-to-text"])
def test_image_pipelines_are_billed_the_input_pixels(pipeline: str) -> None:
    # ai_http.go:1453-1468, :1522-1538, :1539-1556: height*width of the decoded image, no image count.
    assert billed_units(pipeline, {"image": png(640, 48), "num_images_per_prompt": 3}) == 640 * 48
    assert billed_units(pipeline, {"image": gif(10, 20)}) == 200
    assert billed_units(pipeline, {"image": jpeg(1920, 1080)}) == 1920 * 1080
    assert billed_units(pipeline, {"image": b"not an image"}) is None
    assert billed_units(pipeline, {}) is None


def test_image_to_image_is_billed_pixels_times_images() -> None:
    # ai_http.go:1427-1452.
    img = jpeg(640, 48)
    assert billed_units("image-to-image", {"image": img}) == 640 * 48
    assert (
        billed_units("image-to-image", {"image": img, "num_images_per_prompt": 3}) == 3 * 640 * 48
    )
    body, _ = prepare("image-to-image", {"image": img, "num_images_per_prompt": 0}, "m")
    assert billed_units("image-to-image", body) == 640 * 48


def test_images_are_read_from_bytes_likes_and_paths(tmp_path: Path) -> None:
    img = png(31, 17)
    for value in (img, bytearray(img), memoryview(img)):
        assert billed_units("upscale", {"image": value}) == 31 * 17
    path = tmp_path / "in.png"
    path.write_bytes(img)
    assert billed_units("upscale", {"image": path}) == 31 * 17
    # Unreadable paths and strings (never guessed to be paths) are unknown.
    assert billed_units("upscale", {"image": tmp_path / "missing.png"}) is None
    assert billed_units("upscale", {"image": tmp_path}) is None
    assert billed_units("upscale", {"image": str(path)}) is None


def test_a_jpeg_frame_header_after_large_metadata_is_found_in_a_file(tmp_path: Path) -> None:
    # Camera JPEGs carry EXIF/ICC/MPF segments of up to 64 KiB each before the frame header; the
    # orchestrator decodes the whole stream, so the size must be found however far in it is.
    exif = segment(0xE1, b"Exif\x00\x00" + bytes(60000))
    icc = segment(0xE2, b"ICC_PROFILE\x00\x01\x02" + bytes(60000))
    icc2 = segment(0xE2, b"ICC_PROFILE\x00\x02\x02" + bytes(60000))
    data = jpeg(4000, 3000, before=APP0 + exif + icc + icc2 + DQT)
    assert data.index(b"\xff\xc0") > 2 * (1 << 16)
    path = tmp_path / "camera.jpg"
    path.write_bytes(data)
    assert billed_units("image-to-image", {"image": path}) == 4000 * 3000
    assert billed_units("image-to-image", {"image": data}) == 4000 * 3000


def test_pipelines_without_a_known_count_are_unknown() -> None:
    assert billed_units("live-video-to-video", {"height": 2, "width": 2}) is None
    assert billed_units("nope", {}) is None
