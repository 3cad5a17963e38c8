"""Write facts-only copies of several AI-runner OpenAPI versions for the codegen corpus test.

    python scripts/make_ai_runner_corpus.py /path/to/ai-runner.git [TAG ...]

Reads `runner/openapi.json` (early tags) or `runner/openapi.yaml` at each tag of a local git checkout of
livepeer/ai-runner and writes `tests/codegen/corpus/ai-runner-<tag>.json` through `scripts/vendor_upstream.py`
(structure, names, types, constraints and defaults; no prose). A dev tool: nothing in the product or the
tests runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vendor_upstream import vendor

TAGS = ("v0.0.2", "v0.5.0", "v0.9.0", "v0.14.1")
OUT = Path(__file__).resolve().parents[1] / "tests" / "codegen" / "corpus"


def main(argv: list[str]) -> int:
    repo, tags = argv[0], argv[1:] or list(TAGS)
    for tag in tags:
        for path in ("runner/openapi.yaml", "runner/openapi.json"):
            proc = subprocess.run(
                ["git", "-C", repo, "show", f"{tag}:{path}"], capture_output=True, check=False
            )
            if proc.returncode == 0:
                commit = subprocess.run(
                    ["git", "-C", repo, "rev-parse", f"{tag}^{{commit}}"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.strip()
                doc = vendor(proc.stdout, f"livepeer/ai-runner {path}@{commit} ({tag})")
                target = OUT / f"ai-runner-{tag}.json"
                target.write_text(json.dumps(doc, indent=1) + "\n")
                print(f"wrote {target.name} ({len(doc['paths'])} paths)", file=sys.stderr)
                break
        else:
            print(f"{tag}: no runner/openapi.yaml or .json", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
