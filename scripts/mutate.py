#!/usr/bin/env python3
"""Mutation testing for the protocol-carrying modules: ``make mutate [MODULES="sse signer ..."]``.

Why our own runner (docs/testing.md, "Mutation testing", has the full reasoning): mutmut 3 copies the tree
into ``mutants/`` and only puts ``mutants/src`` or ``mutants/`` ahead on ``sys.path``, which the editable
PEP 420 ``livepeer.*`` portions under ``runtime/*/src`` defeat, and it wants a stats run of the whole suite
first; cosmic-ray edits files in place and starts a fresh test command per mutant (1-3 s of interpreter,
pytest, anyio and httpx imports before any test on a busy 2-core machine) with an operator set that yields
thousands of mutants per module. This runner is small on purpose:

* mutants are AST edits (one per mutant) of one module, fed to the import system by a meta-path finder, so
  the file on disk is never touched and module-level code is mutated as well as function bodies;
* one baseline run of the module's test subset records, per test, which lines of the module it executes;
  a mutant then runs only the tests that execute its line (``-x``), in a process forked from a parent that
  already imported pytest and every third-party module the subset needs, so a mutant costs its tests only;
* a mutant on a line no test executes is reported as "uncovered" (a survivor) without running.

Usage: ``python scripts/mutate.py [-j JOBS] [--list] MODULE...`` with short names from ``MODULES`` below or
``all``. Results: a summary table, the surviving mutants (``file:line  mutation  | source line``), and
``.mutate/<module>.json``. Survivors accepted as equivalent are listed, with the reason, in
``scripts/mutate_equivalent.txt`` (matched on module, source line text and mutation, so unrelated edits that
shift line numbers do not invalidate them); the kill rate is killed / (mutants - equivalent).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLIENT = "runtime/livepeer-client/src/livepeer/client"
TRICKLE = "runtime/livepeer-trickle/src/livepeer/trickle"

# short name -> (source file, test subset). The subset is the unit and loopback tests for that module:
# fast enough that a whole module's run takes minutes on two busy cores.
MODULES: dict[str, tuple[str, list[str]]] = {
    "subscriber": (
        f"{TRICKLE}/_subscriber.py",
        [
            "tests/unit/trickle/test_pubsub.py",
            "tests/unit/trickle/test_faults.py",
            "tests/unit/trickle/test_json.py",
            "tests/unit/trickle/test_subscriber_recovery.py",
            "tests/unit/trickle/test_subscriber_mutants.py",
        ],
    ),
    "publisher": (
        f"{TRICKLE}/_publisher.py",
        [
            "tests/unit/trickle/test_pubsub.py",
            "tests/unit/trickle/test_faults.py",
            "tests/unit/trickle/test_publisher_policy.py",
            "tests/unit/trickle/test_json.py",
            "tests/unit/trickle/test_publisher_errors.py",
            "tests/unit/trickle/test_publisher_mutants.py",
        ],
    ),
    "sse": (
        f"{CLIENT}/_sse.py",
        ["tests/unit/client/test_sse.py", "tests/unit/client/test_sse_mutants.py"],
    ),
    "selection": (
        f"{CLIENT}/_selection.py",
        [
            "tests/unit/client/test_selection_race.py",
            "tests/unit/client/test_selection.py",
            "tests/unit/client/test_selection_mutants.py",
            "tests/unit/client/test_routes.py",
            "tests/unit/client/test_payments.py",
        ],
    ),
    "signer": (
        f"{CLIENT}/_signer.py",
        [
            "tests/unit/client/test_payments.py",
            "tests/unit/client/test_error_paths.py",
            "tests/unit/client/test_signer_mutants.py",
        ],
    ),
    # _http.py was split (issue 16): the drivers (_io) and the pure step vocabulary (_ops).
    "io": (
        f"{CLIENT}/_io.py",
        [
            "tests/unit/client/test_lifecycle.py",
            "tests/unit/client/test_error_paths.py",
            "tests/unit/client/test_routes.py",
            # the Race step's drivers (first good answer wins, background probes, close)
            "tests/unit/client/test_selection_race.py",
            # both drivers' race branches, transport errors, decoding, Wait/Info steps (~30 s)
            "tests/unit/client/test_io_drivers.py",
        ],
    ),
    "ops": (
        f"{CLIENT}/_ops.py",
        [
            "tests/unit/client/test_ops.py",
            "tests/unit/client/test_error_paths.py",
            "tests/unit/client/test_routes.py",
        ],
    ),
    # The router and the shared route vocabulary (was _routes/__init__.py).
    "routes": (
        f"{CLIENT}/_routes/__init__.py",
        [
            "tests/unit/client/test_routes.py",
            "tests/unit/client/test_routes_mutants.py",
            "tests/unit/client/test_routing.py",
        ],
    ),
    "route": (
        f"{CLIENT}/_route.py",
        ["tests/unit/client/test_routes.py", "tests/unit/client/test_routes_mutants.py"],
    ),
    # One module per request shape, batch and live halves together (issue 16); the live starters' tests go
    # through the public API against scripted loopback orchestrators and signers (tests/unit/starters).
    "routes.ai": (
        f"{CLIENT}/_routes/ai.py",
        [
            "tests/unit/client/test_routes.py",
            "tests/unit/client/test_error_paths.py",
            # the signer's 480/482 refresh paths need gRPC GetOrchestrator: a scripted orchestrator
            "tests/unit/starters/test_ai_paid_route.py",
            "tests/unit/live",
            "tests/unit/starters/test_lv2v_start.py",
            "tests/unit/client/test_ai_route_units.py",
        ],
    ),
    "routes.apps": (
        f"{CLIENT}/_routes/apps.py",
        [
            "tests/unit/client/test_apps.py",
            "tests/unit/client/test_apps_route.py",
            "tests/unit/client/test_routes.py",
            "tests/unit/live",
            "tests/unit/starters/test_apps_live_start.py",
        ],
    ),
    "routes.byoc": (
        f"{CLIENT}/_routes/byoc.py",
        [
            "tests/unit/client/test_routes.py",
            "tests/unit/client/test_payments.py",
            "tests/unit/client/test_gateway.py",
            "tests/unit/live",
            "tests/unit/starters/test_byoc_live_start.py",
            "tests/unit/starters/test_byoc_route_mutants.py",
        ],
    ),
    # The Go gateway's AI request defaults and billing units (what the signer is asked to pay for).
    "routes.ai_request": (
        f"{CLIENT}/_routes/ai_request.py",
        [
            "tests/unit/client/test_ai_request.py",
            "tests/unit/client/test_audio_timing.py",
            "tests/unit/client/test_routes.py",
            "tests/fidelity/test_ai_vectors.py",
            "tests/unit/starters/test_ai_paid_route.py",
        ],
    ),
    # The one select-and-try loop (was _gateway._Core and _live/_failover). The loop is driven by hand
    # (test_dispatch_loop.py, no network, 5-15 s) and first, so most mutants die in it; test_dispatch.py's
    # loopback tests cover the I/O providers, listings and media fetches. The Gateway, routing, error-path
    # and starters suites were the subset before (1361 s); docs/testing.md "dispatch (2026-12-04)" has the
    # runs showing that they kill nothing these two files do not.
    "dispatch": (
        f"{CLIENT}/_dispatch.py",
        [
            "tests/unit/client/test_dispatch_loop.py",
            "tests/unit/client/test_dispatch.py",
        ],
    ),
}
PRIORITY = ["subscriber", "publisher", "sse", "selection", "signer"]

EQUIVALENT_FILE = ROOT / "scripts" / "mutate_equivalent.txt"
OUT = ROOT / ".mutate"

# ---------------------------------------------------------------------------------------------- mutations

_CMP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BIN = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.Pow: ast.Mult,
}
_SYM = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.Pow: "**",
    ast.And: "and",
    ast.Or: "or",
}
_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


@dataclass
class Mutation:
    line: int
    end_line: int
    stmt_lines: tuple[int, int]
    in_function: bool
    description: str
    apply: Callable[[], Callable[[], None]]  # applies the edit, returns the undo


def _is_docstring(parent: ast.AST, node: ast.AST) -> bool:
    return (
        isinstance(parent, ast.Expr)
        and isinstance(node, ast.Constant)
        and isinstance(node.value, str)
    )


def _logging_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _LOG_METHODS
    )


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _set(obj: Any, attr: str, value: Any) -> Callable[[], Callable[[], None]]:
    def apply() -> Callable[[], None]:
        old = getattr(obj, attr)
        setattr(obj, attr, value)
        return lambda: setattr(obj, attr, old)

    return apply


def _set_item(seq: list[Any], index: int, value: Any) -> Callable[[], Callable[[], None]]:
    def apply() -> Callable[[], None]:
        old = seq[index]
        seq[index] = value

        def undo() -> None:
            seq[index] = old

        return undo

    return apply


def _del_item(seq: list[Any], index: int) -> Callable[[], Callable[[], None]]:
    def apply() -> Callable[[], None]:
        old = seq.pop(index)
        return lambda: seq.insert(index, old)

    return apply


def _replace_child(parent: ast.AST, old: ast.AST, new: ast.AST) -> Callable[[], Callable[[], None]]:
    """Replace ``old`` (a direct child of ``parent``, in a field or a list field) with ``new``."""
    for name, value in ast.iter_fields(parent):
        if value is old:
            return _set(parent, name, new)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    return _set_item(value, i, new)
    raise LookupError("child not found")


def find_mutations(tree: ast.Module, lines: list[str]) -> list[Mutation]:
    found: list[Mutation] = []
    skip_lines = {i + 1 for i, text in enumerate(lines) if "pragma: no mutate" in text}

    def walk(
        node: ast.AST, parent: ast.AST | None, stmt: ast.stmt | None, in_fn: bool, quiet: bool
    ) -> None:
        # quiet: inside a logging call or an annotation; nothing there is behaviour worth a mutant.
        if _type_checking(node):
            return
        if isinstance(node, ast.stmt):
            stmt = node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                walk(dec, node, stmt, in_fn, quiet)
            walk(node.args, node, stmt, in_fn, quiet)
            for child in node.body:
                walk(child, node, child, True, quiet)
            return
        if isinstance(node, ast.arg):
            return  # annotations only
        if isinstance(node, ast.AnnAssign):
            if node.value is not None:
                walk(node.value, node, stmt, in_fn, quiet)
            return
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return
        if isinstance(node, ast.JoinedStr):
            return
        quiet_here = quiet or _logging_call(node)
        line = getattr(node, "lineno", None)
        if line is not None and stmt is not None and line not in skip_lines and not quiet_here:
            span = (stmt.lineno, stmt.end_lineno or stmt.lineno)

            def add(desc: str, apply: Callable[[], Callable[[], None]]) -> None:
                found.append(
                    Mutation(
                        line, getattr(node, "end_lineno", line) or line, span, in_fn, desc, apply
                    )
                )

            _mutations_of(node, parent, add)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                walk(child, node, child, in_fn, quiet)
            elif not _is_docstring(node, child):
                walk(child, node, stmt, in_fn, quiet_here)

    for top in tree.body:
        walk(top, tree, top, False, False)
    return found


def _mutations_of(
    node: ast.AST,
    parent: ast.AST | None,
    add: Callable[[str, Callable[[], Callable[[], None]]], None],
) -> None:
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            new = _CMP.get(type(op))
            if new is not None:
                add(f"{_SYM[type(op)]} -> {_SYM[new]}", _set_item(node.ops, i, new()))
    elif isinstance(node, ast.BoolOp):
        new_op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        add(f"{_SYM[type(node.op)]} -> {_SYM[type(new_op)]}", _set(node, "op", new_op))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and parent is not None:
        add("not x -> x", _replace_child(parent, node, node.operand))
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        new = _BIN.get(type(node.op))
        if new is not None:
            add(f"{_SYM[type(node.op)]} -> {_SYM[new]}", _set(node, "op", new()))
    elif isinstance(node, ast.Constant) and parent is not None:
        value = node.value
        if isinstance(value, bool):
            add(f"{value} -> {not value}", _set(node, "value", not value))
        elif isinstance(value, (int, float)) and not isinstance(parent, ast.Subscript):
            add(f"{value!r} -> {value + 1!r}", _set(node, "value", value + 1))
        elif isinstance(value, (str, bytes)) and value and _keyish(node, parent):
            marked = ("XX" + value + "XX") if isinstance(value, str) else (b"XX" + value + b"XX")
            add(f"{value!r} -> {marked!r}", _set(node, "value", marked))
    elif isinstance(node, ast.Call):
        for i, kw in enumerate(node.keywords):
            if kw.arg is not None:
                add(f"drop {kw.arg}=", _del_item(node.keywords, i))
        if isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
            other = "max" if node.func.id == "min" else "min"
            add(f"{node.func.id} -> {other}", _set(node.func, "id", other))
    elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)):
        if not _logging_call(node.value):
            add("drop call statement", _set(node, "value", ast.Constant(value=None)))
    elif isinstance(node, ast.Break):
        add("break -> continue", _swap_stmt(parent, node, ast.Continue()))
    elif isinstance(node, ast.Continue):
        add("continue -> break", _swap_stmt(parent, node, ast.Break()))


def _swap_stmt(
    parent: ast.AST | None, node: ast.stmt, new: ast.stmt
) -> Callable[[], Callable[[], None]]:
    assert parent is not None
    ast.copy_location(new, node)
    return _replace_child(parent, node, new)


def _keyish(node: ast.AST, parent: ast.AST) -> bool:
    """Strings that select behaviour: compared, used as keys or indexes, header/field values."""
    if isinstance(parent, ast.Compare):
        return True
    if isinstance(parent, ast.Subscript) and parent.slice is node:
        return True
    if isinstance(parent, ast.Dict) and node in parent.keys:
        return True
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute):
        return parent.func.attr in ("get", "pop", "setdefault", "startswith", "endswith", "split")
    return False


def mutant_code(path: Path, tree: ast.Module, mutation: Mutation) -> Any:
    undo = mutation.apply()
    try:
        fixed = ast.fix_missing_locations(copy.deepcopy(tree))
        return compile(fixed, str(path), "exec", dont_inherit=True)
    finally:
        undo()


# ------------------------------------------------------------------------------------------ import hook


class _MutantLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, code: Any) -> None:
        super().__init__(fullname, path)
        self._code = code

    def get_code(self, fullname: str) -> Any:
        return self._code


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, fullname: str, path: Path, code: Any) -> None:
        self.fullname, self.path, self.code = fullname, path, code

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.fullname:
            return None
        loader = _MutantLoader(fullname, str(self.path), self.code)
        return importlib.util.spec_from_file_location(fullname, self.path, loader=loader)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = list(rel.parts)
    parts = parts[parts.index("src") + 1 :]
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


# -------------------------------------------------------------------------------------------- execution


class _LineTracer:
    """Per test, the lines of one file that ran (main thread and threads started during the test)."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.current = "<collect>"
        self.lines: dict[str, set[int]] = defaultdict(set)

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != self.filename:
            return None
        hit = self.lines[self.current]
        hit.add(frame.f_lineno)

        def local(frame: Any, event: str, arg: Any) -> Any:
            hit.add(frame.f_lineno)
            return local

        return local

    def pytest_runtest_protocol(self, item: Any, nextitem: Any) -> None:
        self.current = item.nodeid
        sys.settrace(self._global)
        threading.settrace(self._global)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        sys.settrace(None)
        threading.settrace(None)


class _Outcomes:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.failed:
            self.failed.append(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed += 1


def _pytest_args(tests: list[str], timeout: float) -> list[str]:
    return [
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"--timeout={timeout:.0f}",
        "-o",
        "addopts=--import-mode=importlib",
        "--no-header",
        "-W",
        "ignore",
        *tests,
    ]


def _fork(run: Callable[[], int], log: Path) -> int:
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setsid()
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = run()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return pid


def baseline(src: Path, tests: list[str], work: Path) -> dict[str, Any]:
    """Run the subset once unmutated: it must pass; record lines per test and imported modules."""
    out = work / "baseline.json"

    def run() -> int:
        import pytest

        tracer = _LineTracer(str(src))
        outcomes = _Outcomes()
        started = time.monotonic()
        code = pytest.main(_pytest_args(tests, 120), plugins=[tracer, outcomes])
        elapsed = time.monotonic() - started
        third_party = sorted(
            name
            for name, mod in list(sys.modules.items())
            if not name.startswith(("livepeer", "tests", "conftest", "__main__"))
            and str(getattr(mod, "__file__", "") or "").find(str(ROOT / "runtime")) < 0
            and str(getattr(mod, "__file__", "") or "").find(str(ROOT / "tests")) < 0
        )
        out.write_text(
            json.dumps(
                {
                    "code": int(code),
                    "elapsed": elapsed,
                    "passed": outcomes.passed,
                    "failed": outcomes.failed,
                    "lines": {k: sorted(v) for k, v in tracer.lines.items()},
                    "modules": third_party,
                }
            )
        )
        return int(code)

    pid = _fork(run, work / "baseline.log")
    _, status = os.waitpid(pid, 0)
    if not out.exists() or os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"baseline failed for {src} (see {work / 'baseline.log'})")
    return dict(json.loads(out.read_text()))


@dataclass
class Result:
    mutation: Mutation
    status: str = "pending"  # killed, survived, uncovered, timeout, equivalent
    tests: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_module(short: str, jobs: int) -> dict[str, Any]:
    rel, tests = MODULES[short]
    tests = [t for t in tests if (ROOT / t).exists()]
    src = ROOT / rel
    work = OUT / short
    work.mkdir(parents=True, exist_ok=True)
    text = src.read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    mutations = find_mutations(tree, lines)
    fullname = module_name(src)

    base = baseline(src, tests, work)
    per_test = {k: set(v) for k, v in base["lines"].items() if k != "<collect>"}
    # Packages before C accelerators: "_asyncio" sorts before "asyncio", and importing it first leaves
    # asyncio.current_task() returning None (Python 3.10), so every anyio portal in a mutant's loopback tests
    # failed and the mutant was counted as killed whatever it did.
    for name in sorted(base["modules"], key=lambda n: n.startswith("_")):
        with contextlib.suppress(BaseException):
            __import__(name)
    timeout = max(20.0, 4 * base["elapsed"])
    equivalent = load_equivalents().get(short, {})

    results = [Result(m) for m in mutations]
    queue: list[Result] = []
    for r in results:
        m = r.mutation
        if (lines[m.line - 1].strip(), m.description) in equivalent:
            r.status = "equivalent"
            continue
        if not m.in_function:
            r.tests = list(tests)  # module-level code runs at import time, outside any test
        else:
            span = set(range(m.line, m.end_line + 1)) | {m.stmt_lines[0]}
            r.tests = [t for t, hit in per_test.items() if hit & span]
            if not r.tests:
                r.status = "uncovered"
                continue
        queue.append(r)

    running: dict[int, tuple[Result, float]] = {}
    done = 0
    print(
        f"[{short}] {len(mutations)} mutants, {len(queue)} to run, baseline {base['passed']} tests "
        f"in {base['elapsed']:.1f}s, timeout {timeout:.0f}s",
        flush=True,
    )
    while queue or running:
        while queue and len(running) < jobs:
            r = queue.pop(0)
            code = mutant_code(src, tree, r.mutation)

            def run(r: Result = r, code: Any = code) -> int:
                import pytest

                sys.meta_path.insert(0, _MutantFinder(fullname, src, code))
                return int(pytest.main(_pytest_args(r.tests, timeout)))

            pid = _fork(run, work / f"mutant-{os.getpid()}-{len(running)}.log")
            running[pid] = (r, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for cpid, (r, started) in list(running.items()):
                if now - started > timeout + 10:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(cpid, signal.SIGKILL)
                    r.status = "timeout"
            time.sleep(0.02)
            continue
        if pid not in running:
            continue
        r, started = running.pop(pid)
        r.seconds = time.monotonic() - started
        code = os.waitstatus_to_exitcode(status)
        if r.status != "timeout":
            r.status = "survived" if code == 0 else ("error" if code in (5, 99) else "killed")
        done += 1
        if done % 20 == 0:
            print(f"[{short}] {done}/{done + len(queue) + len(running)}", flush=True)
    return report(short, rel, lines, results)


def load_equivalents() -> dict[str, set[tuple[str, str]]]:
    """``module | mutation | source line | reason`` per line; ``#`` starts a comment line."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    if EQUIVALENT_FILE.exists():
        for raw in EQUIVALENT_FILE.read_text().splitlines():
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            module, desc, source, _reason = (p.strip() for p in raw.split(" | ", 3))
            found[module].add((source, desc))
    return found


def report(short: str, rel: str, lines: list[str], results: list[Result]) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    for r in results:
        counts[r.status] += 1
    killed = counts["killed"] + counts["timeout"]
    scored = len(results) - counts["equivalent"]
    rate = killed / scored if scored else 1.0
    survivors = [r for r in results if r.status in ("survived", "uncovered", "error")]
    data = {
        "module": short,
        "file": rel,
        "mutants": len(results),
        "killed": killed,
        "equivalent": counts["equivalent"],
        "survived": counts["survived"],
        "uncovered": counts["uncovered"],
        "error": counts["error"],
        "rate": rate,
        "survivors": [
            {
                "line": r.mutation.line,
                "mutation": r.mutation.description,
                "status": r.status,
                "source": lines[r.mutation.line - 1].strip(),
            }
            for r in survivors
        ],
    }
    (OUT / f"{short}.json").write_text(json.dumps(data, indent=1))
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "modules", nargs="*", default=PRIORITY, help=f"short names ({', '.join(MODULES)}) or 'all'"
    )
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--min-rate",
        type=float,
        default=0.0,
        help="exit non-zero if a module's kill rate is below this (e.g. 0.85)",
    )
    args = parser.parse_args(argv)
    names = list(MODULES) if args.modules == ["all"] else args.modules
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; known: {', '.join(MODULES)}")
    os.chdir(ROOT)
    if args.list:
        for name in names:
            src = ROOT / MODULES[name][0]
            text = src.read_text()
            for m in find_mutations(ast.parse(text), text.splitlines()):
                print(f"{MODULES[name][0]}:{m.line}  {m.description}")
        return 0
    summaries = []
    for name in names:
        started = time.monotonic()
        if len(names) == 1:
            data = run_module(name, args.jobs)
        else:
            # One process per module: the fork parent pre-imports what one module's tests need, and
            # the anyio pytest plugin's state from one module's run must not leak into the next.
            import subprocess

            subprocess.run(
                [sys.executable, __file__, "-j", str(args.jobs), "--quiet", name], check=False
            )
            data = json.loads((OUT / f"{name}.json").read_text())
        data["seconds"] = time.monotonic() - started
        summaries.append(data)
        for s in data["survivors"]:
            print(f"  {data['file']}:{s['line']}  [{s['status']}] {s['mutation']}  | {s['source']}")
    print()
    print(
        f"{'module':<12} {'mutants':>7} {'killed':>6} {'equiv':>5} {'surv':>5} {'uncov':>5} "
        f"{'rate':>6} {'time':>6}"
    )
    worst = 1.0
    for d in summaries:
        worst = min(worst, d["rate"])
        print(
            f"{d['module']:<12} {d['mutants']:>7} {d['killed']:>6} {d['equivalent']:>5} "
            f"{d['survived'] + d['error']:>5} {d['uncovered']:>5} {d['rate']:>6.1%} "
            f"{d['seconds']:>5.0f}s"
        )
    return 1 if worst < args.min_rate else 0


if __name__ == "__main__":
    sys.exit(main())
