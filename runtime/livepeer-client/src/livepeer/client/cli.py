"""The ``livepeer`` command: ``run``, ``stream``, ``capabilities``, ``devnet``, ``generate``.

Exit codes: 0 success, 1 network/server error, 2 usage or configuration error, 3 no orchestrator or
unknown capability, 4 payment or signer error, 124 timeout, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from ._files import FileOutput

__all__ = ["main"]

EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_PAYMENT, EXIT_TIMEOUT = 1, 2, 3, 4, 124


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


def _load_input(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read input file {text[1:]!r}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--input is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, dict):
        raise ConfigError("--input must be a JSON object")
    return value


def _jsonable(value: object, output: Path | None, counter: list[int]) -> object:
    if isinstance(value, FileOutput):
        if output is None:
            return {"url": value.url, "content_type": value.content_type}
        counter[0] += 1
        target = output if counter[0] == 1 else output.with_stem(f"{output.stem}-{counter[0]}")
        value.save(target)
        return {"saved": str(target), "content_type": value.content_type}
    if isinstance(value, dict):
        return {k: _jsonable(v, output, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v, output, counter) for v in value]
    return value


def _gateway_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token", help="config token (default: $LIVEPEER_TOKEN)")
    p.add_argument("--orch-url", action="append", help="orchestrator URL (repeatable)")
    p.add_argument("--signer-url", help="remote signer URL")
    p.add_argument("--discovery-url", help="discovery URL")
    p.add_argument("--timeout", type=float, default=60.0, help="overall timeout in seconds")
    p.add_argument("--max-price", type=float, help="highest acceptable price (wei per unit)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livepeer", description="Call Livepeer capabilities.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="call a capability and print its result as JSON")
    run.add_argument("capability")
    run.add_argument("--input", help="JSON object, or @file holding one")
    run.add_argument("--model")
    run.add_argument("--output", type=Path, help="save media results here")
    _gateway_args(run)
    stream = sub.add_parser("stream", help="print a capability's events, one data line each")
    stream.add_argument("capability")
    stream.add_argument("--input", help="JSON object, or @file holding one")
    stream.add_argument("--model")
    stream.add_argument("--raw", action="store_true", help="print events as JSON objects")
    _gateway_args(stream)
    caps = sub.add_parser("capabilities", help="list what the network offers, with prices")
    caps.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _gateway_args(caps)
    sub.add_parser("devnet", help="start a local devnet (livepeer-devnet)", add_help=False)
    sub.add_parser("generate", help="generate typed wrappers (livepeer-codegen)", add_help=False)
    return parser


def _delegate(command: str, argv: Sequence[str]) -> int:
    # Imported by name so that neither distribution is needed (or type-checked) unless used.
    module = "livepeer.devnet.__main__" if command == "devnet" else "livepeer.codegen.cli"
    try:
        entry = importlib.import_module(module).main
    except (ImportError, AttributeError):
        dist = "livepeer-devnet" if command == "devnet" else "livepeer-codegen"
        print(
            f"livepeer {command}: needs the {dist} distribution (pip install {dist})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return int(entry(list(argv)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``livepeer`` script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("devnet", "generate"):
        return _delegate(args_list[0], args_list[1:])
    args = _parser().parse_args(args_list)
    from ._gateway import Gateway

    try:
        with Gateway(
            token=args.token,
            orch_url=args.orch_url,
            signer_url=args.signer_url,
            discovery_url=args.discovery_url,
            timeout=args.timeout,
            max_price=args.max_price,
        ) as gw:
            if args.command == "run":
                result = gw.run(args.capability, input=_load_input(args.input), model=args.model)
                print(json.dumps(_jsonable(result, args.output, [0]), indent=2, default=str))
            elif args.command == "stream":
                with gw.stream(
                    args.capability, input=_load_input(args.input), model=args.model
                ) as events:
                    for ev in events:
                        if args.raw:
                            print(json.dumps({"event": ev.event, "id": ev.id, "data": ev.data}))
                        else:
                            print(ev.data)
                        sys.stdout.flush()
            else:
                offers = gw.list_capabilities()
                if args.json:
                    print(json.dumps([o.__dict__ for o in offers], indent=2))
                else:
                    for o in sorted(offers, key=lambda o: (o.capability, o.orchestrator)):
                        price = (
                            ""
                            if o.price_per_unit is None
                            else f"{o.price_per_unit:g} {o.unit or ''}"
                        )
                        print(f"{o.capability:40} {o.route:5} {price:24} {o.orchestrator}")
    except LivepeerError as exc:
        print(f"livepeer {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
