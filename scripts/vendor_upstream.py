"""Make the facts-only copy of an upstream OpenAPI document that `schemas/` is imported from.

    python scripts/vendor_upstream.py SOURCE.yaml --origin "livepeer/ai-runner runner/gateway.openapi.yaml@<commit>"

The repository must build and test from a fresh clone, so the AI-runner spec that `make schemas` reads lives
inside it (`schemas/upstream/`). What we keep is what the importer keeps anyway — structure, names, types,
constraints, defaults, enums, required lists, media types, operation ids — and nothing written by the upstream
authors as prose (`description`, `summary`, `title` of schemas, examples, server and contact blurbs). The
document's own title and version stay (they are names). The output records where it came from and the sha256 of
the exact bytes it was made from, so a re-vendor is reproducible and reviewable.

Output is JSON in the source's key order (property order becomes argument order in the wrappers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

# Prose keys, dropped wherever they appear (the importer drops them too; schemas/ descriptions are ours).
PROSE = frozenset({"description", "summary", "title", "example", "examples", "externalDocs"})
# Top-level keys with nothing the importer reads and prose or URLs of the upstream deployment.
DROP_TOP = frozenset({"servers", "tags", "externalDocs"})
MARKER = "x-livepeer-vendored"


def facts(node: Any, *, in_properties: bool = False) -> Any:
    """The document without prose. Keys of a `properties` map are names, so they are never dropped."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not in_properties and key in PROSE:
                continue
            out[key] = facts(value, in_properties=(key == "properties" and isinstance(value, dict)))
        return out
    if isinstance(node, list):
        return [facts(v) for v in node]
    return node


def vendor(data: bytes, origin: str) -> dict[str, Any]:
    document = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(document, dict) or "paths" not in document:
        raise SystemExit("vendor_upstream: the source is not an OpenAPI document (no 'paths')")
    info = document.get("info") or {}
    out: dict[str, Any] = facts(
        {k: v for k, v in document.items() if k not in DROP_TOP and k != "info"}
    )
    out["info"] = {k: info[k] for k in ("title", "version") if k in info}
    out[MARKER] = {
        "origin": origin,
        "sha256": hashlib.sha256(data).hexdigest(),
        "made_by": "scripts/vendor_upstream.py (facts only: no descriptions, summaries, titles or examples)",
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the upstream OpenAPI document (YAML or JSON)")
    parser.add_argument("--origin", required=True, help="repository, path and commit it came from")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1]
        / "schemas"
        / "upstream"
        / "ai-runner-gateway.facts.json",
    )
    args = parser.parse_args(argv)
    result = vendor(args.source.read_bytes(), args.origin)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} ({len(result['paths'])} paths)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
