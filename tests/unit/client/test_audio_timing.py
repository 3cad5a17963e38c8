"""audio-to-text: the seconds go-livepeer bills and the audio it refuses (``ai_request.audio_seconds``).

The Go gateway and orchestrator both time audio with ``CalculateAudioDuration`` (common/util.go:467-487 at
176aa415): lpms's ``GetCodecInfoBytes`` lets libavformat read the bytes from a pipe, which has no size, and
when ffmpeg reports no duration, lpms estimates ``len(data) * 8 / bitrate`` for mp3, wav and aac (lpms
ffmpeg/ffmpeg.go:301-328 at c44af725, the version go-livepeer's go.mod pins). Whole seconds, truncated; 0 is
refused ("Unable to calculate duration"). The expected numbers below are that arithmetic worked by hand on
media built here (stdlib ``wave``, PyAV's encoders), not read back from the code under test.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from livepeer.client import ValidationError
from livepeer.client._routes.ai_request import audio_seconds, billed_units, prepare

Encoder = Callable[[str, str, float], bytes]


def wav(frames: int, rate: int, channels: int = 1, sampwidth: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sampwidth)
        w.setframerate(rate)
        w.writeframes(bytes(frames * channels * sampwidth))
    return buf.getvalue()


def with_data_size(data: bytes, size: int, riff: int | None = None) -> bytes:
    i = data.index(b"data") + 4
    data = data[:i] + struct.pack("<I", size) + data[i + 4 :]
    return data if riff is None else data[:4] + struct.pack("<I", riff) + data[8:]


@pytest.fixture(params=["ffmpeg", "stdlib"])
def timing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a WAV is timed: by libavformat (PyAV installed) and by the stdlib fallback (no PyAV)."""
    if request.param == "stdlib":
        monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    return str(request.param)


# A stdlib WAV has a 44-byte header; lpms divides all of it by the byte rate (16-bit mono 8 kHz: 16000 B/s).
@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        (wav(8000 * 3, 8000), 3),  # 48044 B
        (wav(16000 * 3 + 15999, 16000, 2), 4),  # 256040 B at 64000 B/s: the header tips it over 4 s
        (wav(16000 * 5 - 1, 16000, 2), 5),  # 320040 B
        (wav(7999, 8000), 1),  # 16042 B: just under a second of samples bills one
        (wav(44100 * 60, 44100, 2), 60),
        (wav(8000 * 2 + 100, 8000, 1, 1), 2),  # 8-bit: 8000 B/s
        (wav(48000 * 3, 48000, 2, 3), 3),  # 24-bit stereo: 288000 B/s
        (wav(3, 1), 25),  # 50 B at 2 B/s: the header alone is 22 s of this
        (wav(0, 8000), 0),
    ],
)
def test_a_wav_is_timed_by_its_whole_length_over_its_byte_rate(
    timing: str, data: bytes, seconds: int
) -> None:
    assert audio_seconds(data) == seconds
    assert billed_units("audio-to-text", {"audio": data}) == (seconds * 1000 or None)


def test_the_boundary_frame_count() -> None:
    # 7978 frames: 15956 + 44 = 16000 B, one second; 7977 frames: 15998 B, none.
    assert audio_seconds(wav(7978, 8000)) == 1
    assert audio_seconds(wav(7977, 8000)) == 0


def test_declared_wav_sizes_do_not_count_through_a_pipe(timing: str) -> None:
    # wavdec.c takes the data chunk's size only when it fits the file's size, which a pipe does not have:
    # the placeholders ffmpeg writes to a pipe (0xFFFFFFFF, 0) and a size claiming 2 s or under 1 s of a
    # 5 s file all bill the whole input: 320072 B at 64000 B/s.
    good = wav(16000 * 5 + 7, 16000, 2)
    for data in (
        with_data_size(good, 0xFFFFFFFF, 0xFFFFFFFF),
        with_data_size(good, 0xFFFFFFFF),
        with_data_size(good, 0),
        with_data_size(good, 16000 * 4 * 2),
        with_data_size(good, 16000 * 4 - 4),
    ):
        assert audio_seconds(data) == 5


def test_a_zero_sample_rate_cannot_be_timed(timing: str) -> None:
    good = wav(8000 * 2, 8000)
    assert audio_seconds(good[:24] + bytes(4) + good[28:]) == 0


@pytest.mark.parametrize(
    ("container", "codec"),
    [("mp3", "libmp3lame"), ("flac", "flac"), ("ipod", "aac"), ("webm", "libopus")],
)
def test_compressed_audio_is_timed_in_whole_seconds(
    encode_audio: Encoder, container: str, codec: str
) -> None:
    for seconds, whole in ((2.5, 2), (61.2, 61)):
        data = encode_audio(container, codec, seconds)
        assert audio_seconds(data) == whole, (container, seconds)
        assert billed_units("audio-to-text", {"audio": data}) == whole * 1000


def test_a_whole_number_of_seconds_is_not_cut_short(encode_audio: Encoder) -> None:
    # FLAC's STREAMINFO holds the sample count: 48000 samples at 16 kHz are 3000000 us, exactly 3 s.
    assert audio_seconds(encode_audio("flac", "flac", 3.0)) == 3


def test_only_mp3_wav_and_aac_are_timed_from_the_bitrate(encode_audio: Encoder) -> None:
    # Half a second of M4A has a duration (0 whole seconds) and a bitrate; lpms estimates only for the
    # three formats (ffmpeg.go:325), so it stays 0 and is refused.
    assert audio_seconds(encode_audio("ipod", "aac", 0.5)) == 0


def test_adts_aac_is_timed_from_its_bitrate(encode_audio: Encoder) -> None:
    # ADTS has no duration field: ffmpeg through a pipe finds none and lpms divides by the bitrate, an
    # estimate (this encoder's silence runs at ~1.4 kbit/s); what matters is that it is timed, not refused.
    seconds = audio_seconds(encode_audio("adts", "aac", 61.2))
    assert seconds is not None
    assert 50 <= seconds <= 61


def test_ogg_cannot_be_timed_through_a_pipe(encode_audio: Encoder) -> None:
    # Ogg's duration is the last page's granule position: ffmpeg needs to seek to the end, and lpms's
    # bitrate estimate does not cover "ogg". go-livepeer refuses it, however long it is.
    assert audio_seconds(encode_audio("ogg", "libopus", 61.2)) == 0


@pytest.mark.parametrize(
    "data",
    [b"", b"RIFF", wav(16000, 8000)[:20], b"RIFF\x00\x00\x00\x00WAVEfmt ", b"ID3\x04" + bytes(40)],
)
def test_what_is_not_audio_is_refused_with_pyav_and_unknown_without(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert audio_seconds(data) == 0
    monkeypatch.setitem(sys.modules, "av", None)
    assert audio_seconds(data) is None


def test_without_pyav_only_wav_is_timed(
    encode_audio: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    mp3 = encode_audio("mp3", "libmp3lame", 2.5)
    monkeypatch.setitem(sys.modules, "av", None)
    assert audio_seconds(mp3) is None
    assert billed_units("audio-to-text", {"audio": mp3}) is None
    # A chunk running past the RIFF chunk: the stdlib raises RuntimeError, which is no input error.
    good = wav(8000 * 2, 8000)
    bad = good[:12] + b"LIST" + struct.pack("<I", 1 << 20) + b"INFO" + good[12:]
    assert audio_seconds(bad) is None


def test_audio_is_read_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "in.wav"
    path.write_bytes(wav(22050 * 4, 22050, 2))  # 352844 B at 88200 B/s
    assert billed_units("audio-to-text", {"audio": path}) == 4000
    assert prepare("audio-to-text", {"audio": path}, "m")[0]["metadata"] == '{"duration":"4"}'
    assert audio_seconds(None) is None


# --- prepare: what the Go gateway does before it selects orchestrators ------------------------------------


def test_the_runner_is_told_the_duration_as_the_gateway_tells_it(encode_audio: Encoder) -> None:
    # submitAudioToText (ai_process.go:961-966): metadata = json.Marshal(map[string]string{"duration": N}).
    mp3 = encode_audio("mp3", "libmp3lame", 2.5)
    body, model = prepare("audio-to-text", {"audio": mp3, "metadata": "{}"}, None)
    assert body == {"audio": mp3, "model_id": model, "metadata": '{"duration":"2"}'}
    assert json.loads(str(body["metadata"])) == {"duration": "2"}


@pytest.mark.parametrize(
    "audio",
    [wav(4000, 8000), b"not audio", "ogg"],
)
def test_audio_go_livepeer_cannot_time_is_refused_before_any_request(
    encode_audio: Encoder, audio: object
) -> None:
    # ai_process.go:952-959: the gateway returns the error before selecting orchestrators.
    data = encode_audio("ogg", "libopus", 3.0) if audio == "ogg" else audio
    with pytest.raises(
        ValidationError, match=r"input\['audio'\]: go-livepeer cannot time this audio"
    ):
        prepare("audio-to-text", {"audio": data}, "m")


@pytest.mark.parametrize("payload", [{}, {"audio": None}])
def test_audio_to_text_without_audio_is_refused(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=r"audio-to-text needs input\['audio'\]"):
        prepare("audio-to-text", payload, "m")


def test_audio_this_process_cannot_time_is_sent_without_a_duration(
    encode_audio: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    mp3 = encode_audio("mp3", "libmp3lame", 2.5)
    monkeypatch.setitem(sys.modules, "av", None)
    # The orchestrator and runner time it themselves; a paid request is refused later (the ai route).
    assert prepare("audio-to-text", {"audio": mp3}, "m")[0] == {"audio": mp3, "model_id": "m"}
