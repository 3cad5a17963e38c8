"""``python -m livepeer.devnet [--offchain|--onchain] [--orchestrators N] [--port-base P]``.

Starts the devnet on 127.0.0.1, prints one JSON line (orchestrators, signer, discovery, token, control, ...)
on stdout, runs until SIGINT/SIGTERM and exits 0. ``main(argv)`` is what ``livepeer devnet`` calls.

The JSON line is the machine contract and always the first line of stdout. When stdout is a terminal (or
with ``--human``), readable lines follow it: what runs where, an ``export LIVEPEER_TOKEN=...`` line, the
throwaway key on-chain BYOC needs, and how to stop; ``--quiet`` prints the JSON line only.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from livepeer.devnet._network import Devnet, DevnetOptions
from livepeer.devnet._orchestrator import Faults
from livepeer.devnet._signer import SignerFaults

__all__ = ["build_parser", "main"]


def _fault(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep:
        return name, True
    try:
        return name, json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"fault value for {name!r} must be JSON (true, 2, 0.5)"
        ) from None


def build_parser(prog: str = "livepeer-devnet") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run a local Livepeer network on 127.0.0.1: orchestrators with sample "
        "capabilities, a remote signer with discovery. Prints a JSON line, then (on a terminal) "
        "readable instructions; Ctrl-C stops it.",
        epilog=f"example:\n  {prog} --port-base 8935    # same ports, so the same token, every time",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--offchain",
        dest="onchain",
        action="store_false",
        help="no signatures or payments (default)",
    )
    mode.add_argument(
        "--onchain", dest="onchain", action="store_true", help="verify signatures, require payment"
    )
    parser.set_defaults(onchain=False)
    parser.add_argument(
        "--orchestrators", type=int, default=1, metavar="N", help="number of orchestrators"
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=None,
        metavar="P",
        help="orchestrator i on P+i, signer on P+N: fixed ports keep the token valid across restarts",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument(
        "--human",
        dest="human",
        action="store_true",
        default=None,
        help="print the readable lines even when stdout is not a terminal",
    )
    out.add_argument("--quiet", dest="human", action="store_false", help="print only the JSON line")
    parser.add_argument(
        "--faulty",
        type=int,
        default=None,
        metavar="I",
        help="index of the orchestrator the --fault flags apply to (default: the last when N > 1)",
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="worker_delay=2, worker_dead, no_capacity, price_multiplier=3, trickle_470=5",
    )
    parser.add_argument(
        "--signer-fault",
        type=_fault,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="storm_status=480 storm_count=3, discovery_warm=false, sign_byoc_job=true (branch-only)",
    )
    parser.add_argument(
        "--discovery-warmup",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="discovery answers 503 this long after start",
    )
    return parser


def human_lines(info: dict[str, Any], signer_key: str | None, prog: str) -> list[str]:
    """What a person needs after ``livepeer devnet``: where things run, the export line, how to stop."""
    onchain = info["mode"] == "onchain"
    lines = [
        "",
        f"Livepeer devnet ({info['mode']}) is running on 127.0.0.1:",
        *(f"  orchestrator {i}: {url}" for i, url in enumerate(info["orchestrators"])),
        f"  signer:         {info['signer']}",
        f"  discovery:      {info['discovery']}",
        f"  BYOC samples:   {', '.join(info['capabilities'])}",
        "",
        "In another shell:",
        f"  export LIVEPEER_TOKEN={info['token']}",
    ]
    if onchain and signer_key:
        lines += [
            "  # on-chain BYOC jobs are signed with the payer's key (a throwaway devnet key):",
            f"  export LIVEPEER_PRIVATE_KEY={signer_key}",
        ]
    lines += [
        "  livepeer capabilities",
        "  livepeer run text-reversal -i text=hello",
        "",
        "Stop with Ctrl-C."
        + (
            ""
            if info.get("port_base") is not None
            else f" New ports (and a new token) on every start; `{prog} --port-base 8935` keeps them."
        ),
    ]
    return lines


def main(argv: Sequence[str] | None = None, *, prog: str = "livepeer-devnet") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.orchestrators < 1:
        print(f"{prog}: --orchestrators must be >= 1", file=sys.stderr)
        return 2
    faults = dict(args.fault)
    faulty = args.faulty
    if faults and faulty is None:
        faulty = args.orchestrators - 1
    if faulty is not None and not 0 <= faulty < args.orchestrators:
        print(f"{prog}: --faulty must be in 0..{args.orchestrators - 1}", file=sys.stderr)
        return 2
    try:  # validate switches before starting anything
        Faults().update(faults)
        SignerFaults().update(dict(args.signer_fault))
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    options = DevnetOptions(
        onchain=args.onchain,
        orchestrators=args.orchestrators,
        port_base=args.port_base,
        faulty=faulty,
        faults=faults,
        discovery_warmup=args.discovery_warmup,
    )
    human = sys.stdout.isatty() if args.human is None else args.human
    try:
        anyio.run(_run, options, dict(args.signer_fault), human, prog, backend="trio")
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(
    options: DevnetOptions, signer_faults: dict[str, Any], human: bool, prog: str
) -> None:
    async with Devnet(options) as net:
        net.signer_faults.update(signer_faults)
        # Handlers first, then the ready line: a signal sent as soon as the line is read must still
        # stop the devnet cleanly (exit 0), not kill it mid-start.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            info = net.info()
            sys.stdout.write(json.dumps(info) + "\n")
            if human:
                key = "0x" + net.signer.key.private_key.hex() if options.onchain else None
                info = {**info, "port_base": options.port_base}
                sys.stdout.write("\n".join(human_lines(info, key, prog)) + "\n")
            sys.stdout.flush()
            async for _ in signals:
                break


if __name__ == "__main__":
    sys.exit(main())
