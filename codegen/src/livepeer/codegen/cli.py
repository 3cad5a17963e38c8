"""``livepeer-codegen`` / ``python -m livepeer.codegen``: import schemas, render wrappers, generate packages.

``python -m livepeer.codegen render`` (in the repository root) renders ``generated/`` from ``schemas/*.json``;
``... import --from FILE|URL [--capability NAME ...] --out schemas/`` imports schemas;
``... import --sources schemas/SOURCES.md`` re-imports every recorded source;
``... generate --from FILE|URL --out DIR`` writes an importable package of typed wrappers (``livepeer generate``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from livepeer.codegen._document import Capability, dump_document, load_capability
from livepeer.codegen._errors import CodegenError
from livepeer.codegen._importer import import_document, keep_descriptions, load_source
from livepeer.codegen._naming import file_stem
from livepeer.codegen._render import render_package
from livepeer.codegen._sources import read_sources, write_sources

__all__ = ["generate", "import_schemas", "main", "render"]

_PACKAGE_DIR = Path("generated/src/livepeer/capabilities")


def import_schemas(
    source: str,
    out: Path,
    *,
    capabilities: Sequence[str] = (),
    root: Path | None = None,
    warnings: list[str] | None = None,
) -> list[Path]:
    """Import ``source`` into ``out/<capability>.json`` (keeping our descriptions) and rewrite SOURCES.md."""
    loaded = load_source(source, root=root or Path.cwd())
    docs = import_document(loaded, capabilities=capabilities, warnings=warnings)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    stems: dict[str, str] = {}
    for doc in docs:
        # the file name comes from the document: sanitized, and checked to stay in `out`
        stem = file_stem(str(doc["name"]))
        if stems.setdefault(stem, doc["name"]) != doc["name"]:
            raise CodegenError(
                source, f"capabilities {stems[stem]!r} and {doc['name']!r} clash as {stem}.json"
            )
        target = out / f"{stem}.json"
        if target.resolve().parent != out.resolve():
            raise CodegenError(source, f"refusing to write {target} outside {out}")
        if target.exists():
            # a broken old file has nothing worth keeping
            with contextlib.suppress(json.JSONDecodeError):
                keep_descriptions(doc, json.loads(target.read_text(encoding="utf-8")))
        data = dump_document(doc)
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
        written.append(target)
    write_sources(out)
    return written


def load_schemas(schema_dir: Path, *, display_dir: str | None = None) -> list[Capability]:
    paths = sorted(schema_dir.glob("*.json"))
    caps = [
        load_capability(p, display=f"{display_dir}/{p.name}" if display_dir else None)
        for p in paths
    ]
    names = [c.name for c in caps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CodegenError(str(schema_dir), f"capabilities defined twice: {dupes}")
    return caps


def _version(pyproject: Path) -> str | None:
    if not pyproject.exists():
        return None
    match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else None


def _ruff_config(root: Path) -> Path | None:
    cfg = root / "pyproject.toml"
    return cfg if cfg.exists() and "[tool.ruff" in cfg.read_text(encoding="utf-8") else None


def render(
    root: Path | None = None, *, schemas: Path | None = None, out: Path | None = None
) -> list[Path]:
    """``make generate``: render ``generated/src/livepeer/capabilities`` from ``schemas/*.json``."""
    root = root or Path.cwd()
    schema_dir = schemas or root / "schemas"
    if not schema_dir.is_dir():
        raise CodegenError(str(schema_dir), "no schemas directory (run from the repository root)")
    caps = load_schemas(schema_dir, display_dir="schemas")
    return render_package(
        caps,
        out or root / _PACKAGE_DIR,
        title="Typed wrappers for Livepeer capabilities, generated from ``schemas/``.",
        version=_version(root / "generated" / "pyproject.toml"),
        schema_dir="schemas",
        regenerate="make generate",
        ruff_config=_ruff_config(root),
        readme=root / "generated" / "README.md" if out is None else None,
    )


def generate(
    source: str,
    out: Path,
    *,
    capabilities: Sequence[str] = (),
    warnings: list[str] | None = None,
) -> list[Path]:
    """Typed wrappers for your own capabilities: ``generate("http://runner:8000/openapi.json", Path("mycaps"))``.

    Writes ``out/`` as an importable package (``from mycaps import Capabilities``) plus the imported schemas
    in ``out/_schemas/``.
    """
    if not out.name.isidentifier():
        raise CodegenError(
            str(out), "the output directory name must be a valid Python package name"
        )
    schema_dir = out / "_schemas"
    import_schemas(source, schema_dir, capabilities=capabilities, warnings=warnings)
    caps = load_schemas(schema_dir, display_dir="_schemas")
    return render_package(
        caps,
        out,
        title=f"Typed wrappers for capabilities imported from {source}.",
        schema_dir="_schemas",
        regenerate=f"livepeer generate --from {source} --out {out.name}",
    )


def _parser(prog: str = "livepeer-codegen") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import capability schemas into schemas/")
    group = imp.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--from",
        dest="source",
        help="OpenAPI 3.0/3.1 or JSON Schema: a file, URL or runner:mod:Class",
    )
    group.add_argument(
        "--sources", type=Path, help="re-import every source listed in this SOURCES.md"
    )
    imp.add_argument(
        "--capability", action="append", default=[], help="only this capability (repeatable)"
    )
    imp.add_argument(
        "--out", type=Path, default=Path("schemas"), help="schema directory (default: schemas)"
    )
    ren = sub.add_parser(
        "render", help="render generated/ from schemas/ (run in the repository root)"
    )
    ren.add_argument("--schemas", type=Path, default=None)
    ren.add_argument("--out", type=Path, default=None)
    gen = sub.add_parser(
        "generate",
        help="import + render into an importable package of your own",
        description="Write an importable package of typed wrappers for a runner's capabilities.",
        epilog="example: livepeer generate --from http://127.0.0.1:8000/openapi.json --out ./mycaps",
    )
    gen.add_argument(
        "--from", dest="source", required=True, help="a runner's /openapi.json URL, or a file"
    )
    gen.add_argument(
        "--out", type=Path, required=True, help="package directory to write (e.g. ./mycaps)"
    )
    gen.add_argument(
        "--capability", action="append", default=[], help="only this capability (repeatable)"
    )
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "livepeer-codegen") -> int:
    """Entry point; ``livepeer generate ...`` passes its arguments here (with or without ``generate``).

    ``prog="livepeer"`` (the ``livepeer`` command) always means the ``generate`` subcommand, so its help
    reads ``livepeer generate``.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if prog != "livepeer-codegen" and args_list[:1] != ["generate"]:
        args_list.insert(0, "generate")
    elif args_list and args_list[0].startswith("--") and args_list[0] != "--help":
        # `livepeer generate --from URL --out DIR` hands over its arguments without the command
        args_list.insert(0, "generate")
    args = _parser(prog).parse_args(args_list)
    started = time.perf_counter()
    warnings: list[str] = []
    try:
        if args.command == "import":
            if args.sources is not None:
                written = []
                for source, names in read_sources(args.sources).items():
                    written += import_schemas(source, args.sources.parent, capabilities=names)
            else:
                written = import_schemas(
                    args.source, args.out, capabilities=args.capability, warnings=warnings
                )
            print(
                f"imported {len(written)} schema(s) into {args.out if args.sources is None else args.sources.parent}"
            )
        elif args.command == "render":
            changed = render(schemas=args.schemas, out=args.out)
            print(
                f"rendered generated code: {len(changed)} file(s) changed in {time.perf_counter() - started:.1f}s"
            )
        else:
            changed = generate(
                args.source, args.out, capabilities=args.capability, warnings=warnings
            )
            print(
                f"wrote package {args.out} ({len(changed)} file(s) changed); import it: from {args.out.name} import Capabilities"
            )
    except CodegenError as exc:
        _print_warnings(warnings)
        print(f"livepeer-codegen: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of ours: still one line, and the way to see the traceback
        if os.environ.get("LIVEPEER_CODEGEN_DEBUG"):
            raise
        _print_warnings(warnings)
        print(
            f"livepeer-codegen: error: internal error {type(exc).__name__}: {_one_line(str(exc))} "
            "(set LIVEPEER_CODEGEN_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return 2
    _print_warnings(warnings)
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _print_warnings(warnings: Sequence[str]) -> None:
    for text in warnings:
        print(f"livepeer-codegen: warning: {_one_line(text)}", file=sys.stderr)
