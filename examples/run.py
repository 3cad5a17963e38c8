"""Call a capability and print its result.

    livepeer devnet --port-base 8935         # prints `export LIVEPEER_TOKEN=...`; run it in another shell
    python examples/run.py "hello world"

Without LIVEPEER_TOKEN, set LIVEPEER_ORCH_URL / LIVEPEER_SIGNER_URL / LIVEPEER_DISCOVERY_URL instead.
"""

from __future__ import annotations

import sys

from livepeer.client import Gateway, LivepeerError


def main(text: str) -> int:
    try:
        # Configured from LIVEPEER_* environment variables; a missing or broken configuration is a
        # ConfigError right here, before any request.
        with Gateway() as gw:
            result = gw.run("text-reversal", input={"text": text})
    except LivepeerError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or "hello livepeer"))
