"""``python -m livepeer.devnet [--offchain|--onchain] [--orchestrators N] [--port-base P]``.

Starts the devnet on 127.0.0.1, prints one JSON line (orchestrators, signer, discovery, token, control, ...)
on stdout, runs until SIGINT/SIGTERM and exits 0. ``main(argv)`` is what ``livepeer devnet`` calls.
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
        prog=prog, description="Run a local Livepeer network on 127.0.0.1."
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
        help="orchestrator i on P+i, signer on P+N",
    )
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.orchestrators < 1:
        print("--orchestrators must be >= 1", file=sys.stderr)
        return 2
    faults = dict(args.fault)
    faulty = args.faulty
    if faults and faulty is None:
        faulty = args.orchestrators - 1
    if faulty is not None and not 0 <= faulty < args.orchestrators:
        print(f"livepeer-devnet: --faulty must be in 0..{args.orchestrators - 1}", file=sys.stderr)
        return 2
    try:  # validate switches before starting anything
        Faults().update(faults)
        SignerFaults().update(dict(args.signer_fault))
    except ValueError as exc:
        print(f"livepeer-devnet: {exc}", file=sys.stderr)
        return 2
    options = DevnetOptions(
        onchain=args.onchain,
        orchestrators=args.orchestrators,
        port_base=args.port_base,
        faulty=faulty,
        faults=faults,
        discovery_warmup=args.discovery_warmup,
    )
    try:
        anyio.run(_run, options, dict(args.signer_fault), backend="trio")
    except ValueError as exc:
        print(f"livepeer-devnet: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"livepeer-devnet: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(options: DevnetOptions, signer_faults: dict[str, Any]) -> None:
    async with Devnet(options) as net:
        net.signer_faults.update(signer_faults)
        sys.stdout.write(json.dumps(net.info()) + "\n")
        sys.stdout.flush()
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break


if __name__ == "__main__":
    sys.exit(main())
