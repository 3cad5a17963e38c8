"""Focused measure of the typed cold path: fresh processes to the first result, interleaved, one devnet.

bench/run.py's fresh-process rows compare ours with livepeer-gateway 1.0.0; this one splits the typed row into
what the wrappers cost and what any typed result built from pydantic models costs, so a codegen change can be
judged on its own. Arms (each a whole ``python -c`` process, order alternating every round):

- ``typed[NAME]``: ``gw.capabilities.text_reversal.run(text=...)`` with the interpreter of each ``NAME=PYTHON``;
- ``untyped``: ``gw.run("text-reversal", ...)`` with the last interpreter;
- ``floor``: the untyped call plus the same two models written by hand with pydantic (import, build, validate
  the input, validate the result): the least a typed call that returns pydantic models can cost;
- ``plain``: the untyped call plus the same two models as plain classes with hand-written checks (no pydantic):
  the least a typed call that does not return pydantic models could cost (docs/decisions.md D-perf-4);
- ``peer``: livepeer-gateway 1.0.0's ``submit_byoc_job`` (bench/run.py's venv).

Build one clean Python 3.12 venv per checkout to compare, as bench/run.py's ``ours_python`` does (``uv build
--wheel`` of livepeer-client, livepeer-capabilities and livepeer-trickle, ``uv venv -p 3.12``, ``uv pip install``
the wheels), then:

    .venv/bin/python bench/typed_cold.py 20 base=/tmp/base-venv/bin/python new=/tmp/new-venv/bin/python

Prints medians [min-max] over rounds and per-round ratios; writes nothing.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable

import run as bench
from _harness import Stat, devnet_process, interleave, ratios

FLOOR = textwrap.dedent(
    """
    import sys
    from typing import Annotated
    from livepeer.client import Gateway
    from pydantic import BaseModel, ConfigDict, Field
    class In(BaseModel):
        model_config = ConfigDict(extra="allow", populate_by_name=True)
        text: Annotated[str, Field(description="Text to reverse.", max_length=100000)]
    class Out(BaseModel):
        model_config = ConfigDict(extra="allow", populate_by_name=True)
        original: Annotated[str, Field(description="The text as received.")]
        reversed: Annotated[str, Field(description="The text, character order reversed.")]
    with Gateway(orch_url=sys.argv[1]) as gw:
        payload = In.model_validate({"text": "hello"}).model_dump(by_alias=True)
        assert Out.model_validate(gw.run("text-reversal", input=payload)).reversed == "olleh"
    """
)
PLAIN = textwrap.dedent(
    """
    import sys
    from livepeer.client import Gateway
    class In:
        __slots__ = ("text",)
        def __init__(self, text):
            if not isinstance(text, str) or len(text) > 100000:
                raise ValueError("text: a string of at most 100000 characters")
            self.text = text
    class Out:
        __slots__ = ("original", "reversed")
        def __init__(self, original, reversed, **extra):
            if not isinstance(original, str) or not isinstance(reversed, str):
                raise ValueError("original, reversed: strings")
            self.original, self.reversed = original, reversed
    with Gateway(orch_url=sys.argv[1]) as gw:
        payload = {"text": In("hello").text}
        assert Out(**gw.run("text-reversal", input=payload)).reversed == "olleh"
    """
)


def main() -> None:
    rounds = int(sys.argv[1])
    pythons = dict(arg.split("=", 1) for arg in sys.argv[2:])
    if not pythons:
        raise SystemExit(__doc__)
    last = list(pythons.values())[-1]
    peer = bench.peer_python()
    with devnet_process("--orchestrators", "1") as (info, _pid):
        orch = info["orchestrators"][0]

        def arm(python: str, code: str) -> Callable[[], float]:
            return lambda: bench.process_ms(python, code, orch)

        arms = {f"typed[{n}]": arm(py, bench.COLD_TYPED) for n, py in pythons.items()}
        arms["untyped"] = arm(last, bench.COLD_UNTYPED)
        arms["floor"] = arm(last, FLOOR)
        arms["plain"] = arm(last, PLAIN)
        if peer is not None:
            arms["peer"] = arm(peer, bench.COLD_PEER)
        got = interleave(arms, rounds)
    for name, values in got.items():
        line = f"{name:16s} {Stat.of(values).fmt(1)} ms"
        if "peer" in got and name != "peer":
            line += f"  vs peer {ratios(values, got['peer']).fmt(2)}x"
        if name.startswith("typed"):
            line += f"  vs floor {ratios(values, got['floor']).fmt(2)}x"
        print(line)


if __name__ == "__main__":
    main()
