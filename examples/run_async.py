"""Call a capability several times concurrently with the async API.

LIVEPEER_TOKEN=<token> python examples/run_async.py one two three
"""

from __future__ import annotations

import sys

import anyio

from livepeer.client import Gateway


async def main(words: list[str]) -> None:
    results: dict[str, object] = {}
    async with Gateway() as gw:

        async def reverse(word: str) -> None:
            results[word] = await gw.run_async("text-reversal", input={"text": word})

        async with anyio.create_task_group() as tg:
            for word in words:
                tg.start_soon(reverse, word)
    for word in words:
        print(results[word])


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:] or ["hello", "livepeer"])
