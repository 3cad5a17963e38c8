"""Stream an LLM answer token by token with the async API.

LIVEPEER_TOKEN=<token> python examples/stream_async.py "tell me something"
"""

from __future__ import annotations

import sys

import anyio

from livepeer.client import Gateway


async def main(prompt: str) -> None:
    async with Gateway() as gw:
        messages = [{"role": "user", "content": prompt}]
        async with gw.stream_async("llm", input={"messages": messages}) as events:
            async for event in events:
                chunk = event.json()
                if isinstance(chunk, dict):
                    for choice in chunk.get("choices", []):
                        print(choice.get("delta", {}).get("content", ""), end="", flush=True)
    print()


if __name__ == "__main__":
    anyio.run(main, " ".join(sys.argv[1:]) or "hello there")
