"""What the ``livepeer`` command reads and writes: ``-i`` inputs, media summaries, the progress line."""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from ._errors import ConfigError
from ._files import FileOutput

__all__ = ["Progress", "load_inputs", "summarize"]

# A terminal shows a summary of media instead of its bytes: a data: URL of one 512x512 PNG is ~350 KB.
SHOWN_URL = 120
# The records the status line follows (docs/client.md "Logging").
_STEPS = re.compile(r"trying |failover from |retry round | via \w+ route")


def _read(source: str, stdin: IO[str]) -> str:
    if source == "-":
        return stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read input file {source!r}: {exc.strerror}") from None


def _object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where} is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a JSON object")
    return value


def load_inputs(items: list[str] | None, stdin: IO[str] | None = None) -> dict[str, Any] | None:
    """``-i`` / ``--input`` values merged left to right.

    ``{"k": 1}`` a JSON object; ``@file`` / ``@-`` a JSON object from a file / stdin; ``key=value`` one field
    (``value`` parsed as JSON when it is JSON — numbers, true, lists — else kept as text); ``key=@path`` a
    file field (sent as multipart).
    """
    if not items:
        return None
    stdin = sys.stdin if stdin is None else stdin
    out: dict[str, Any] = {}
    for item in items:
        if item.startswith("@"):
            out.update(_object(_read(item[1:], stdin), f"--input {item}"))
        elif item.lstrip().startswith("{"):
            out.update(_object(item, "--input"))
        elif "=" in item:
            key, _, raw = item.partition("=")
            if not key:
                raise ConfigError(f"--input {item!r}: the field name before '=' is empty")
            if raw.startswith("@"):
                path = Path(raw[1:])
                if not path.is_file():
                    raise ConfigError(f"--input {key}=@{raw[1:]}: no such file")
                out[key] = path
                continue
            try:
                out[key] = json.loads(raw)
            except json.JSONDecodeError:
                out[key] = raw
        else:
            raise ConfigError(
                f"--input {item[:40]!r} is not a JSON object, @file, @- or key=value "
                "(e.g. -i text=hello -i width=64)"
            )
    return out


def _human(n: int) -> str:
    return (
        f"{n} B" if n < 1024 else f"{n / 1024:.0f} KB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MB"
    )


def _extension(content_type: str | None) -> str:
    ext = (
        mimetypes.guess_extension((content_type or "").split(";")[0].strip())
        if content_type
        else None
    )
    return ext or ".bin"


class _Saver:
    def __init__(self, target: Path | None) -> None:
        self.target = target
        self.count = 0

    def save(self, value: FileOutput) -> Path:
        assert self.target is not None
        self.count += 1
        if self.target.suffix and not self.target.is_dir():
            # A file name (`--output cat.png`): later files get -2, -3, ...
            path = (
                self.target
                if self.count == 1
                else self.target.with_stem(f"{self.target.stem}-{self.count}")
            )
        else:
            self.target.mkdir(parents=True, exist_ok=True)
            path = self.target / f"output-{self.count}{_extension(value.content_type)}"
        return value.save(path)


def summarize(value: object, output: Path | None) -> object:
    """The result as JSON-ready data: media saved under ``output`` (a directory, or a file name), or
    summarized (type, size, a cut URL) when there is nowhere to save it."""
    saver = _Saver(output)

    def walk(v: object) -> object:
        if isinstance(v, FileOutput):
            if output is not None:
                path = saver.save(v)
                return {
                    "saved": str(path),
                    "content_type": v.content_type,
                    "bytes": path.stat().st_size,
                }
            shown: dict[str, object] = {"content_type": v.content_type}
            if v.url and not v.url.startswith("data:"):
                shown["url"] = v.url
            else:
                size = len(v.read())
                shown["url"] = (v.url or "")[:40] + f"… ({_human(size)}; --output DIR saves it)"
                shown["bytes"] = size
            return shown
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str) and v.startswith("data:") and len(v) > SHOWN_URL:
            return v[:40] + f"… ({_human(len(v))} data URL; --output DIR saves media)"
        return v

    return walk(value)


class Progress(logging.Handler):
    """One status line on stderr while a call runs: elapsed time, attempt, orchestrator.

    It listens to the client's own records (``LIVEPEER_LOG=info`` prints the same, plus the per-attempt
    debug line), so it shows what the call is really doing; it is drawn only when stderr is a terminal.
    """

    def __init__(self, label: str, stream: IO[str]) -> None:
        super().__init__(logging.DEBUG)
        self.label = label
        self.stream = stream
        self.status = "selecting an orchestrator"
        self.attempt = 1
        self._stop = threading.Event()
        self._draw_lock = threading.Lock()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._logger = logging.getLogger("livepeer.client")
        self._level = self._logger.level

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not _STEPS.search(message):
            return  # request-level records are too fine-grained for one status line
        found = re.search(r"attempt (\d+)", message)
        if found:
            self.attempt = int(found.group(1))
        elif "retry round" in message:
            self.attempt += 1
        self.status = message.split(": ", 1)[-1][:70]
        self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self._started
        line = f"\r\x1b[2K{self.label} {elapsed:5.1f}s  attempt {self.attempt}  {self.status}"
        with self._draw_lock:  # the ticker thread and the calling thread both draw
            self.stream.write(line)
            self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._draw()

    def __enter__(self) -> Progress:
        self._logger.addHandler(self)
        if self._logger.getEffectiveLevel() > logging.DEBUG:
            self._logger.setLevel(logging.DEBUG)
        self._draw()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)
        self.stream.write("\r\x1b[2K")
        self.stream.flush()
