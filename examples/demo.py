"""``make demo``: start a local devnet, then run the README examples against it, exactly as a user would.

The devnet (``python -m livepeer.devnet``) prints one JSON line with a ready-made config token; each example
then runs in its own process with ``LIVEPEER_TOKEN`` set to it, and the devnet is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = [
    ("run: a plain value (text-reversal)", ["run.py", "hello livepeer"]),
    ("stream: server-sent events (token-stream)", ["stream.py"]),
    ("capabilities: typed wrapper (text-to-image)", ["capabilities.py"]),
    ("live: video in, video out (live-video-to-video, model grayscale)", ["live.py"]),
]


def main() -> int:
    started = time.perf_counter()
    devnet = subprocess.Popen(
        [sys.executable, "-m", "livepeer.devnet", "--orchestrators", "2"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert devnet.stdout is not None
        line = devnet.stdout.readline()
        if not line:
            print("the devnet did not start (see its output above)", file=sys.stderr)
            return 1
        info = json.loads(line)
        print(f"devnet ready in {time.perf_counter() - started:.1f}s: "
              f"orchestrators {', '.join(info['orchestrators'])}, signer {info['signer']}")  # fmt: skip
        env = {**os.environ, "LIVEPEER_TOKEN": info["token"]}
        failures = 0
        for title, argv in EXAMPLES:
            print(f"\n== {title}: python examples/{' '.join(argv)}", flush=True)
            proc = subprocess.run(
                [sys.executable, str(HERE / argv[0]), *argv[1:]], env=env, timeout=120
            )
            failures += proc.returncode != 0
        print(f"\n{len(EXAMPLES) - failures}/{len(EXAMPLES)} examples succeeded")
        return 1 if failures else 0
    finally:
        devnet.send_signal(signal.SIGINT)
        try:
            devnet.wait(timeout=15)
        except subprocess.TimeoutExpired:
            devnet.kill()


if __name__ == "__main__":
    sys.exit(main())
