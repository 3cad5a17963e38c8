"""The ``livepeer`` command: ``run``, ``stream``, ``live``, ``capabilities``, ``devnet``, ``generate``.

Exit codes: 0 success, 1 network/server error, 2 usage or configuration error, 3 no orchestrator or
unknown capability, 4 payment or signer error, 124 timeout, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import (
    CapabilityError,
    ConfigError,
    LivepeerError,
    NoOrchestratorError,
    PaymentError,
    SignerError,
    TimeoutError,
    ValidationError,
)

if TYPE_CHECKING:
    from ._gateway import Gateway, Offering

__all__ = ["main"]

EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_PAYMENT, EXIT_TIMEOUT = 1, 2, 3, 4, 124
PROG = "livepeer"


def _exit_code(exc: LivepeerError) -> int:
    if isinstance(exc, (ConfigError, ValidationError)):
        return EXIT_USAGE
    if isinstance(exc, (NoOrchestratorError, CapabilityError)):
        return EXIT_UNAVAILABLE
    if isinstance(exc, (PaymentError, SignerError)):
        return EXIT_PAYMENT
    if isinstance(exc, TimeoutError):
        return EXIT_TIMEOUT
    return EXIT_ERROR


def _version() -> str:
    from . import __version__

    return f"{PROG} {__version__} (livepeer-client)"


def _gateway_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "network (default: $LIVEPEER_TOKEN and the other LIVEPEER_* variables)"
    )
    g.add_argument("--token", help="config token from the dashboard or `livepeer devnet`")
    g.add_argument("--orch-url", action="append", help="orchestrator URL (repeatable)")
    g.add_argument("--signer-url", help="remote signer URL")
    g.add_argument("--discovery-url", help="discovery URL")
    g.add_argument("--timeout", type=float, default=60.0, help="overall deadline in seconds (60)")
    g.add_argument("--max-price", type=float, help="highest acceptable price (wei per unit)")
    g.add_argument(
        "--max-spend",
        type=int,
        metavar="WEI",
        help="refuse any payment that would take this command past WEI (expected value of tickets)",
    )
    g.add_argument(
        "--show-cost",
        action="store_true",
        help="print what the command paid (expected value of tickets, per orchestrator) on stderr",
    )


def _call_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("capability", help="a name from `livepeer capabilities`")
    p.add_argument(
        "-i",
        "--input",
        action="append",
        metavar="INPUT",
        help="key=value (JSON value or text), key=@path (a file), a JSON object, @file.json or @- "
        "(stdin); repeatable, merged left to right",
    )
    p.add_argument("--model", help="model to ask for (built-in pipelines, apps)")
    p.add_argument(
        "--route",
        choices=["byoc", "app"],
        help="force the route of a name offered both as BYOC and as an app (default: BYOC first)",
    )


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Call Livepeer capabilities from the command line.",
        epilog="start here:\n  livepeer devnet            # a local network; prints a token\n"
        "  livepeer capabilities      # what the network offers\n"
        "  livepeer run text-reversal -i text=hello",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = _sub(
        sub,
        "run",
        "call a capability once and print its result as JSON (media saved with --output)",
        "livepeer run text-to-image -i prompt='a red fox' -i width=512 --output out/",
    )
    _call_args(run)
    run.add_argument(
        "-o", "--output", type=Path, help="save media results in this directory (or as this file)"
    )
    _gateway_args(run)
    stream = _sub(
        sub,
        "stream",
        "print a capability's server-sent events as they arrive, one data line each",
        "livepeer stream token-stream -i text='one two three'",
    )
    _call_args(stream)
    stream.add_argument("--raw", action="store_true", help="print events as JSON objects")
    _gateway_args(stream)
    live = _sub(
        sub,
        "live",
        "run a live video session: publish a video file (or a test pattern), save the output video",
        "livepeer live live-video-to-video --model noop --test-pattern --seconds 3 -o out.mp4",
    )
    live.add_argument("capability", help="a live capability, e.g. live-video-to-video")
    live.add_argument("--model", help="model to run (live-video-to-video needs one)")
    source = live.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", type=Path, help="input video file")
    source.add_argument("--test-pattern", action="store_true", help="publish moving colour bars")
    live.add_argument("--seconds", type=float, default=5.0, help="how long to publish (5)")
    live.add_argument("--fps", type=int, default=15, help="frames per second published (15)")
    live.add_argument("-p", "--param", action="append", metavar="KEY=VALUE", help="job parameter")
    live.add_argument("-o", "--output", type=Path, required=True, help="output video file (.mp4)")
    _gateway_args(live)
    caps = _sub(
        sub,
        "capabilities",
        "list every name the network offers: route, price with unit, capacity, orchestrator",
        "livepeer capabilities --json",
    )
    caps.add_argument("--json", action="store_true", help="print JSON for machines")
    _gateway_args(caps)
    _sub(
        sub,
        "devnet",
        "start a local Livepeer network on 127.0.0.1 (prints a token; Ctrl-C stops it)",
        "livepeer devnet --port-base 8935",
    )
    _sub(
        sub,
        "generate",
        "generate typed wrappers for a runner's capabilities",
        "livepeer generate --from http://127.0.0.1:8000/openapi.json --out ./mycaps",
    )
    return parser


def _delegate(command: str, argv: Sequence[str]) -> int:
    # Imported by name so that neither distribution is needed (or type-checked) unless used.
    module = "livepeer.devnet.__main__" if command == "devnet" else "livepeer.codegen.cli"
    try:
        entry = importlib.import_module(module).main
    except (ImportError, AttributeError):
        dist = "livepeer-devnet" if command == "devnet" else "livepeer-codegen"
        print(
            f"{PROG} {command}: needs the {dist} distribution (pip install {dist})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    prog = f"{PROG} devnet" if command == "devnet" else PROG
    return int(entry(list(argv), prog=prog) or 0)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[None]:
    if not sys.stderr.isatty():
        yield
        return
    from ._cli_io import Progress

    with Progress(label, sys.stderr):
        yield


def _price(o: Offering) -> tuple[str, str]:
    if o.price_per_unit is None:
        return "-", ""
    if o.price_per_unit == 0:
        return "free", ""
    return f"{o.price_per_unit:.6g}", o.unit or ""


def _print_table(offers: Sequence[Offering]) -> None:
    header = ("CAPABILITY", "ROUTE", "PRICE", "UNIT", "CAPACITY", "ORCHESTRATOR")
    rows = [
        (
            o.capability,
            o.route,
            *_price(o),
            "-" if o.capacity is None else str(o.capacity),
            o.orchestrator,
        )
        for o in sorted(offers, key=lambda o: (o.capability, o.route, o.orchestrator))
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if not rows:
        print("(nothing offered)")


def _print_cost(gw: Gateway) -> None:
    """The spend summary of this command (stderr, so stdout stays the result)."""
    summary = gw.spend.summary()
    if not summary.payments:
        print("cost: 0 wei (no payment made; offchain or prepaid credit)", file=sys.stderr)
        return
    print(
        f"cost: {summary.total_wei} wei ({summary.total_eth:.10f} ETH expected value) in "
        f"{summary.payments} payment(s) of {summary.tickets} ticket(s)",
        file=sys.stderr,
    )
    for orch, value in sorted(summary.by_orchestrator.items()):
        print(f"  {orch}: {math.ceil(value)} wei", file=sys.stderr)


def _dispatch(gw: Gateway, args: argparse.Namespace, inputs: dict[str, object] | None) -> None:
    from ._cli_io import summarize

    if args.command == "run":
        with _progress(f"{PROG} run {args.capability}"):
            result = gw.run(args.capability, input=inputs, model=args.model, route=args.route)
            shown = summarize(result, args.output)
        text = json.dumps(shown, indent=2, default=str)
        if args.output is not None:
            # -o keeps the result too, not only its media: DIR/result.json, or the .json file named.
            if args.output.suffix == ".json":
                target = args.output
            elif args.output.suffix:
                target = args.output.with_suffix(".json")
            else:
                target = args.output / "result.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n", encoding="utf-8")
        print(text)
    elif args.command == "stream":
        with gw.stream(args.capability, input=inputs, model=args.model, route=args.route) as events:
            for ev in events:
                if args.raw:
                    print(json.dumps({"event": ev.event, "id": ev.id, "data": ev.data}))
                else:
                    print(ev.data)
                sys.stdout.flush()
    elif args.command == "live":
        from ._cli_live import run_live

        run_live(gw, args)
    else:
        with _progress(f"{PROG} capabilities"):
            offers = gw.list_capabilities()
        if args.json:
            print(json.dumps([o.__dict__ for o in offers], indent=2))
        else:
            _print_table(offers)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livepeer`` script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("devnet", "generate"):
        return _delegate(args_list[0], args_list[1:])
    args = _parser().parse_args(args_list)
    from ._cli_io import load_inputs
    from ._gateway import Gateway

    try:
        # Inputs first: a typo in -i is reported before any configuration or network problem.
        inputs = load_inputs(args.input) if args.command in ("run", "stream") else None
        with Gateway(
            token=args.token,
            orch_url=args.orch_url,
            signer_url=args.signer_url,
            discovery_url=args.discovery_url,
            timeout=args.timeout,
            max_price=args.max_price,
            max_spend=args.max_spend,
        ) as gw:
            try:
                _dispatch(gw, args, inputs)
            finally:
                if args.show_cost:
                    _print_cost(gw)
    except LivepeerError as exc:
        print(f"{PROG} {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
