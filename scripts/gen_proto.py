"""Regenerate livepeer.client._proto (lp_rpc_pb2.py + .pyi) from lp_rpc.proto.

    python scripts/gen_proto.py [--check]

Runs ``python -m grpc_tools.protoc --python_out --pyi_out`` (grpcio-tools, dev group) in a temporary
directory and post-processes the output so that it is reproducible and installable with any protobuf >= 5.27:
the protoc version banner and the runtime-version guard are removed (the guard would demand a runtime at
least as new as the protoc that happened to run; the serialized descriptor it builds from is stable).
``--check`` exits 1 if the committed files differ from a fresh generation (used by CI).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "runtime" / "livepeer-client" / "src" / "livepeer" / "client" / "_proto"
PROTO = "lp_rpc.proto"
OUTPUTS = ("lp_rpc_pb2.py", "lp_rpc_pb2.pyi")

_GUARD = re.compile(
    r"from google\.protobuf import runtime_version as _runtime_version\n"
    r"|_runtime_version\.ValidateProtobufRuntimeVersion\(\n(?:.*\n)*?\)\n"
)
_BANNER = re.compile(r"^# Protobuf Python Version: .*\n", re.MULTILINE)


def _normalise(text: str) -> str:
    text = _BANNER.sub("", text)
    text = _GUARD.sub("", text)
    return text.rstrip("\n") + "\n"


def generate() -> dict[str, str]:
    """Return {file name: normalised content} for a fresh protoc run."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTO_DIR}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                PROTO,
            ],
            check=True,
            cwd=PROTO_DIR,
        )
        return {name: _normalise((Path(tmp) / name).read_text()) for name in OUTPUTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed files are stale"
    )
    args = parser.parse_args(argv)
    fresh = generate()
    if args.check:
        stale = [n for n, body in fresh.items() if (PROTO_DIR / n).read_text() != body]
        if stale:
            print(f"stale generated protobuf files: {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    for name, body in fresh.items():
        (PROTO_DIR / name).write_text(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
