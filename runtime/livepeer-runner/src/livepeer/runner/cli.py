"""``livepeer-runner``: serve a pipeline class, or print its schema.

``livepeer-runner serve mypkg.mod:MyPipeline --host 0.0.0.0 --port 8000``
``livepeer-runner schema mypkg.mod:MyPipeline > openapi.json``

``serve`` prints one JSON line on stdout once listening (``{"capability", "url"}``), optionally registers the
worker with an orchestrator (``--orchestrator URL --secret S``), and exits 0 on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from collections.abc import Sequence

import anyio

from livepeer.runner._errors import RunnerError
from livepeer.runner._pipeline import LivePipeline, Pipeline

__all__ = ["load_pipeline", "main"]


def load_pipeline(target: str) -> type[Pipeline] | type[LivePipeline]:
    """Import ``"package.module:ClassName"`` and return the class."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise RunnerError(f"expected module:Class, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like uvicorn: local modules work without installing them
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise RunnerError(f"cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RunnerError(f"{module_name!r} has no attribute {attr!r}") from None
    if not (isinstance(obj, type) and issubclass(obj, (Pipeline, LivePipeline))):
        raise RunnerError(f"{target} is not a Pipeline or LivePipeline subclass")
    return obj


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livepeer-runner", description="Serve a Livepeer capability."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("serve", help="serve module:Class over HTTP")
    srv.add_argument("target", help="module:Class")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--name", help="capability name (default: the class's)")
    srv.add_argument(
        "--token", default=os.environ.get("LIVEPEER_RUNNER_TOKEN"), help="required bearer token"
    )
    srv.add_argument("--orchestrator", help="register with this orchestrator once listening")
    srv.add_argument(
        "--secret", default=os.environ.get("LIVEPEER_ORCH_SECRET", ""), help="orchestrator secret"
    )
    srv.add_argument(
        "--public-url", help="URL the orchestrator should call (default: the listening URL)"
    )
    srv.add_argument("--price", type=int, default=0, help="price per unit (wei)")
    srv.add_argument("--capacity", type=int, default=1)
    sch = sub.add_parser("schema", help="print the OpenAPI document of module:Class")
    sch.add_argument("target", help="module:Class")
    sch.add_argument("--name", help="capability name (default: the class's)")
    sch.add_argument("-o", "--output", help="write to this file instead of stdout")
    return parser


async def _serve(args: argparse.Namespace, cls: type[Pipeline] | type[LivePipeline]) -> None:
    from livepeer.runner._app import serve
    from livepeer.runner._register import register_async
    from livepeer.runner.hosting import hosted

    app = serve(cls, name=args.name, token=args.token)
    name = args.name or cls.capability_name()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with hosted(app, host=args.host, port=args.port) as srv:
            print(json.dumps({"capability": name, "url": srv.url}), flush=True)
            if args.orchestrator:
                await register_async(
                    args.orchestrator,
                    args.secret,
                    name,
                    args.public_url or srv.url,
                    args.price,
                    args.capacity,
                    description=cls.capability_description(),
                    token=args.token or "",
                )
            async for _ in signals:
                break


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cls = load_pipeline(args.target)
        if args.command == "schema":
            from livepeer.runner._openapi import openapi_json

            data = openapi_json(cls, name=args.name)
            if args.output:
                with open(args.output, "wb") as fh:
                    fh.write(data)
            else:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
            return 0
        anyio.run(_serve, args, cls)
    except RunnerError as exc:
        print(f"livepeer-runner: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
