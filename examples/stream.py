"""Stream server-sent events from a capability, printing each as it arrives.

LIVEPEER_TOKEN=<token> python examples/stream.py "the quick brown fox"
"""

from __future__ import annotations

import sys

from livepeer.client import Gateway


def main(text: str) -> None:
    with Gateway() as gw, gw.stream("token-stream", input={"text": text}) as events:
        for event in events:
            print(event.json())
        if events.balance is not None:
            print(f"(orchestrator balance after the stream: {events.balance})")


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "streaming from livepeer")
