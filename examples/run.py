"""Call a capability and print its result.

    livepeer devnet &                        # prints a JSON line with a "token"
    LIVEPEER_TOKEN=<token> python examples/run.py "hello world"

Without LIVEPEER_TOKEN, set LIVEPEER_ORCH_URL / LIVEPEER_SIGNER_URL / LIVEPEER_DISCOVERY_URL instead.
"""

from __future__ import annotations

import sys

from livepeer.client import Gateway, LivepeerError


def main(text: str) -> int:
    with Gateway() as gw:  # configured from LIVEPEER_* environment variables
        try:
            result = gw.run("text-reversal", input={"text": text})
        except LivepeerError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or "hello livepeer"))
