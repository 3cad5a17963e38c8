"""Import-cycle guard: the modules of each named package must import one another without a circle.

    python scripts/check_imports.py livepeer.client livepeer.devnet livepeer.runner livepeer.trickle
    python scripts/check_imports.py --eager-only livepeer.client      # import-time circles only
    python scripts/check_imports.py --list-lazy livepeer.devnet       # also list every function-level import
    python scripts/check_imports.py --max-lines 700 livepeer.client   # also: no module over 700 lines

Each package name is resolved to its source directory under ``runtime/*/src`` (``livepeer.devnet`` ->
``runtime/livepeer-devnet/src/livepeer/devnet``; ``generated/src`` and ``codegen/src`` are searched too). The graph is built statically with ``ast``, nothing is
imported: one node per module of the package, one edge per ``import``/``from ... import`` that names another
module of the same package (imports of other distributions are outside the graph; they cannot close a circle
inside this one unless that distribution imports back, which its own run of this script catches).

What counts as an edge, and why:

- ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, otherwise to ``a.b``; ``import a.b``
  is an edge to ``a.b``. Relative imports are resolved against the importing module's package.
- The parent packages that Python initialises on the way (``a/__init__``) are NOT edges: by the time a
  submodule runs, its parents are already in ``sys.modules``, so a package ``__init__`` re-exporting its
  submodules would otherwise make every package a circle.
- Imports under ``if TYPE_CHECKING:`` are not edges (they never run); the ``else:`` branch is.
- Function-level (lazy) imports ARE edges by default. A lazy import breaks the circle at import time but not
  in the design: the two modules still need each other, and the first refactor that hoists the import turns
  it into an ImportError. ``--eager-only`` drops them (the import-time graph); cycles print lazy edges as
  ``~>`` and eager ones as ``->`` so the two can be told apart, and ``--list-lazy`` lists every lazy import.
- Dynamic imports (``importlib.import_module``, ``__import__``) are invisible to this check.

``--max-lines N`` also fails on any hand-written module of the packages longer than N lines (``wc -l``;
generated ``_proto`` modules excepted): the per-module size bound of docs/decisions.md D-arch-size.

Exit status 1 and one line per circle (a shortest cycle through each strongly connected component) if any
package has one; 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    lazy: bool
    line: int


SOURCE_ROOTS = ("runtime/*/src", "generated/src", "codegen/src")


def find_package_dir(root: Path, package: str) -> Path:
    """The directory of ``package`` in exactly one source root (a package split over two is an error)."""
    rel = Path(*package.split("."))
    found = sorted(
        p for pattern in SOURCE_ROOTS for p in root.glob(f"{pattern}/{rel}") if p.is_dir()
    )
    if len(found) != 1:
        where = ", ".join(str(p) for p in found) or "nowhere"
        raise SystemExit(f"check_imports: {package} found in {where} (searched {SOURCE_ROOTS})")
    return found[0]


def module_files(package: str, pkg_dir: Path) -> dict[str, Path]:
    """Every module of the package by dotted name; ``__init__.py`` names its package."""
    modules: dict[str, Path] = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        parts = list(path.relative_to(pkg_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement that can run, each with whether it sits inside a function."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, lazy))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for branch in node.orelse:
                visit(branch, lazy)
            return
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, False)
    return found


def _in_package(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is a module of the package, else its nearest ancestor that is, else None."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def module_edges(name: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    tree = ast.parse(path.read_bytes(), filename=str(path))
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []
    for node, lazy in _imports(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                # A package's own __init__ is level 1's anchor; a plain module's anchor is its parent.
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop] if drop else anchor
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        for target in targets:
            resolved = _in_package(target, modules)
            edge = Edge(name, resolved or "", lazy, node.lineno)
            # One edge per statement and target: `from m import a, b` is one import of m.
            if resolved is not None and resolved != name and edge not in edges:
                edges.append(edge)
    return edges


def build_graph(package: str, pkg_dir: Path, *, eager_only: bool = False) -> dict[str, list[Edge]]:
    modules = module_files(package, pkg_dir)
    graph: dict[str, list[Edge]] = {}
    for name, path in modules.items():
        edges = module_edges(name, path, modules)
        graph[name] = [e for e in edges if not (eager_only and e.lazy)]
    return graph


def strongly_connected(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a deep package must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = sorted({e.target for e in graph[node]})
            if i < len(targets):
                work.append((node, i + 1))
                nxt = targets[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return [c for c in components if len(c) > 1]


def shortest_cycle(graph: dict[str, list[Edge]], component: list[str]) -> list[Edge]:
    """A shortest circle through the component's first module, staying inside the component."""
    members = set(component)
    start = component[0]
    came: dict[str, Edge] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for edge in sorted(graph[node], key=lambda e: (e.target, e.lazy, e.line)):
            if edge.target not in members:
                continue
            if edge.target == start:
                path = [edge]
                while path[0].source != start:
                    path.insert(0, came[path[0].source])
                return path
            if edge.target not in came:
                came[edge.target] = edge
                queue.append(edge.target)
    raise AssertionError(f"no cycle through {start} in its own component")  # Tarjan guarantees one


def format_cycle(cycle: list[Edge]) -> str:
    text = cycle[0].source
    for edge in cycle:
        text += f" {'~>' if edge.lazy else '->'} {edge.target} (line {edge.line})"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("packages", nargs="+", help="dotted package names, e.g. livepeer.client")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--eager-only", action="store_true", help="ignore function-level imports")
    parser.add_argument(
        "--list-lazy", action="store_true", help="also list every function-level import"
    )
    parser.add_argument(
        "--max-lines", type=int, default=0, help="fail on a module longer than this (D-arch-size)"
    )
    args = parser.parse_args(argv)

    failed = False
    for package in args.packages:
        graph = build_graph(
            package, find_package_dir(args.root, package), eager_only=args.eager_only
        )
        components = strongly_connected(graph)
        edges = sum(len(v) for v in graph.values())
        print(
            f"{package}: {len(graph)} modules, {edges} internal imports, {len(components)} circle(s)"
        )
        for component in components:
            failed = True
            print(f"  circle among {len(component)} modules: {', '.join(component)}")
            print(f"    {format_cycle(shortest_cycle(graph, component))}")
        if args.max_lines:
            for path in sorted(find_package_dir(args.root, package).rglob("*.py")):
                lines = len(path.read_text().splitlines())
                if "_proto" not in path.parts and lines > args.max_lines:
                    failed = True
                    print(f"  {path.relative_to(args.root)}: {lines} lines > {args.max_lines}")
        if args.list_lazy:
            for edge in sorted(
                (e for v in graph.values() for e in v if e.lazy), key=lambda e: e.source
            ):
                print(f"  lazy: {edge.source} ~> {edge.target} (line {edge.line})")
    if failed:
        print(
            "check_imports: import circles (-> import-time, ~> function-level) or oversized modules",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
