"""Mutants of a reference solution, and the one sandbox item that runs them all. Plain Python, no Django.

A problem's tests are weak when small changes to its reference still pass them. ``mutants`` makes such
changes with ``ast`` (an operator flipped, a constant changed, a branch dropped, a return value
changed), deterministically: the same source always gives the same mutants, in the same order, picked
round-robin across the kinds of change so that a short ``limit`` still samples each kind.

``mutant_item`` builds ONE sandbox item whose code is a harness: inside the sandbox it runs the
reference once (to time it), then each mutant in a forked child of its own (so a mutant that loops,
exits or breaks the interpreter's state cannot touch the next one) against the problem's tests, with a
per-mutant time limit, and prints one JSON line: ``{"killed": [true, false, null, ...], ...}`` (null: not
run, the item's time budget was spent). A mutant is killed when the tests fail, raise or time out on it.

``mutation_score`` reads that line back from the sandbox's result: the share of the mutants that were
run that the tests killed, and the survivors by description.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from workers.sandbox import compare
from workers.sandbox.compare import DEFAULT_FLOAT_TOL

DEFAULT_LIMIT = 12
_KINDS = ("operator", "comparison", "boolean", "constant", "branch", "return")
_BINOPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
_CMPOPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_SYMBOL = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.FloorDiv: "//",
    ast.Div: "/",
    ast.Mod: "%",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


@dataclass(frozen=True)
class Mutant:
    description: str  # "line 4: '<' -> '<='", for people
    source: str  # the whole mutated program


@dataclass(frozen=True)
class MutationReport:
    score: float  # killed / total (0.0 when nothing could be run)
    killed: int
    total: int  # the mutants that were run
    survivors: list[str] = field(default_factory=list)
    not_run: int = 0  # mutants the harness had no time left for
    error: str = ""  # why there is no score (the harness did not report), else ""


@dataclass(frozen=True)
class _Site:
    kind: str
    position: int  # index of the node in ast.walk order (the same for every parse of the source)
    line: int
    column: int
    change: str  # what apply_ does, see _apply
    description: str


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring expressions: their text is not code."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _sites(tree: ast.Module) -> list[_Site]:
    skip = _docstrings(tree)
    sites: list[_Site] = []
    for position, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", 0)
        column = getattr(node, "col_offset", 0)
        at = f"line {line}: "
        if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOPS:
            old = type(node.op)
            new = _BINOPS[old]
            sites.append(
                _Site("operator", position, line, column, "op", f"{at}'{_SYMBOL[old]}' -> '{_SYMBOL[new]}'")
            )
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _CMPOPS:
                    new_cmp = _CMPOPS[type(op)]
                    sites.append(
                        _Site(
                            "comparison",
                            position,
                            line,
                            column,
                            f"cmp:{i}",
                            f"{at}'{_SYMBOL[type(op)]}' -> '{_SYMBOL[new_cmp]}'",
                        )
                    )
        elif isinstance(node, ast.BoolOp):
            old_name, new_name = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            sites.append(
                _Site("boolean", position, line, column, "bool", f"{at}'{old_name}' -> '{new_name}'")
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            sites.append(_Site("boolean", position, line, column, "not", f"{at}'not' removed"))
        elif isinstance(node, ast.Constant) and id(node) not in skip:
            if isinstance(node.value, bool):
                sites.append(
                    _Site(
                        "constant", position, line, column, "const", f"{at}{node.value} -> {not node.value}"
                    )
                )
            elif isinstance(node.value, int) and abs(node.value) < 1 << 62:
                sites.append(
                    _Site(
                        "constant", position, line, column, "const", f"{at}{node.value} -> {node.value + 1}"
                    )
                )
        elif isinstance(node, ast.If):
            sites.append(_Site("branch", position, line, column, "if_body", f"{at}if-body replaced by pass"))
            if node.orelse:
                sites.append(_Site("branch", position, line, column, "else", f"{at}else removed"))
        elif isinstance(node, ast.IfExp):
            sites.append(
                _Site(
                    "branch", position, line, column, "ifexp", f"{at}conditional expression always takes else"
                )
            )
        elif isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Constant) and value.value is None:
                continue
            sites.append(
                _Site("return", position, line, column, "return", f"{at}return value changed to None")
            )
    return sites


def _apply(tree: ast.Module, site: _Site) -> None:
    node = next(n for i, n in enumerate(ast.walk(tree)) if i == site.position)
    if site.change == "op":
        assert isinstance(node, ast.BinOp | ast.AugAssign)
        node.op = _BINOPS[type(node.op)]()
    elif site.change.startswith("cmp:"):
        assert isinstance(node, ast.Compare)
        i = int(site.change[4:])
        node.ops[i] = _CMPOPS[type(node.ops[i])]()
    elif site.change == "bool":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif site.change == "not":
        assert isinstance(node, ast.UnaryOp)
        # `not x` -> `bool(x)`: the same type, the opposite truth.
        _replace(tree, node, ast.Call(func=ast.Name("bool", ast.Load()), args=[node.operand], keywords=[]))
    elif site.change == "const":
        assert isinstance(node, ast.Constant) and isinstance(node.value, int)  # bools are ints
        node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
    elif site.change == "if_body":
        assert isinstance(node, ast.If)
        node.body = [ast.Pass()]
    elif site.change == "else":
        assert isinstance(node, ast.If)
        node.orelse = []
    elif site.change == "ifexp":
        assert isinstance(node, ast.IfExp)
        _replace(tree, node, node.orelse)
    elif site.change == "return":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(None)


def _replace(tree: ast.Module, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for i, child in enumerate(value):
                    if child is old:
                        value[i] = new
                        return


def mutants(source: str, *, limit: int = DEFAULT_LIMIT) -> list[Mutant]:
    """Up to ``limit`` distinct mutants of ``source`` (which must parse), deterministic."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    baseline = ast.unparse(tree)
    by_kind: dict[str, list[_Site]] = {kind: [] for kind in _KINDS}
    for site in sorted(_sites(tree), key=lambda s: (s.line, s.column, s.position)):  # source order
        by_kind[site.kind].append(site)
    order: list[_Site] = []
    for rank in range(max((len(v) for v in by_kind.values()), default=0)):
        order.extend(by_kind[kind][rank] for kind in _KINDS if rank < len(by_kind[kind]))
    found: list[Mutant] = []
    seen = {baseline}
    for site in order:
        if len(found) >= limit:
            break
        copy = ast.parse(source)
        _apply(copy, site)
        try:
            mutated = ast.unparse(ast.fix_missing_locations(copy))
            compile(mutated, "<mutant>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError):
            continue
        if mutated in seen:
            continue
        seen.add(mutated)
        found.append(Mutant(description=site.description, source=mutated))
    return found


# --- the harness --------------------------------------------------------------------------------------
# Runs inside the sandbox, as the item's code: standard library only. Its constants are filled in by
# mutant_item as JSON (parsed inside, so no source text is ever pasted into code).
_HARNESS = r'''
import io, json, os, select, sys, time

_CONFIG = json.loads(__CONFIG__)


_COMPARE = {}
exec(_CONFIG["compare_source"], _COMPARE)  # the sandbox's own comparison (workers/sandbox/compare.py)


def _program_passes(code, case):
    stdin = io.TextIOWrapper(io.BytesIO(case["input"].encode()), encoding="utf-8")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    sys.stdin, sys.stdout = stdin, stdout
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as e:
        if e.code not in (None, 0):
            return False
    finally:
        sys.stdin, sys.stdout = sys.__stdin__, sys.__stdout__
    stdout.flush()
    actual = stdout.buffer.getvalue().decode("utf-8", "replace")
    return _COMPARE["same_output"](case["output"], actual, _CONFIG["compare"], _CONFIG["float_tol"])


def _passes(source):
    code = compile(source, "<mutant>", "exec")
    if _CONFIG["kind"] == "program":
        return all(_program_passes(code, case) for case in _CONFIG["cases"])
    ns = {"__name__": "__candidate__", "__builtins__": __builtins__}
    exec(code, ns)
    exec(compile(_CONFIG["tests"], "<tests>", "exec"), ns)
    entry = _CONFIG["entry_point"]
    if entry and callable(ns.get("check")):
        ns["check"](ns[entry])
    return True


def _fork():
    # The slot's uid has a process cap (RLIMIT_NPROC) that other items of the same slot share: a
    # moment's EAGAIN is waited out, a lasting one ends the harness without a report.
    pause = 0.01
    for _ in range(12):
        try:
            return os.fork()
        except BlockingIOError:
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
    return os.fork()


def _trial(source, limit):
    """("survived" | "killed" | "timeout", seconds): source run against the tests in a child."""
    r, w = os.pipe()
    pid = _fork()
    start = time.monotonic()
    if pid == 0:
        try:
            os.close(r)
            os.setpgid(0, 0)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            ok = _passes(source)
            os.write(w, b"S" if ok else b"K")
        except BaseException:
            pass
        os._exit(0)
    os.close(w)
    # The pipe turns readable when the child writes its verdict or exits (however it exits).
    ready, _, _ = select.select([r], [], [], limit)
    if not ready:
        for kill in (lambda: os.killpg(pid, 9), lambda: os.kill(pid, 9)):
            try:
                kill()
            except OSError:
                pass
        os.waitpid(pid, 0)
        os.close(r)
        return "timeout", time.monotonic() - start
    said = os.read(r, 1)
    os.waitpid(pid, 0)
    os.close(r)
    return ("survived" if said == b"S" else "killed"), time.monotonic() - start


def _main():
    began = time.monotonic()
    budget = _CONFIG["budget_s"]
    outcome, took = _trial(_CONFIG["reference"], budget)
    report = {"reference": outcome, "reference_s": round(took, 4), "killed": [], "timeouts": 0}
    if outcome == "survived":
        limit = min(_CONFIG["per_mutant_s"], max(_CONFIG["floor_s"], 5 * took + 0.1))
        report["per_mutant_s"] = round(limit, 3)
        for source in _CONFIG["mutants"]:
            left = budget - (time.monotonic() - began)
            if left < min(limit, 0.05):
                report["killed"].append(None)
                continue
            outcome, _ = _trial(source, min(limit, left))
            report["timeouts"] += outcome == "timeout"
            report["killed"].append(outcome != "survived")
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


_main()
'''


def mutant_item(
    problem: Any,
    mutants: list[Mutant],
    *,
    item_id: str,
    budget_s: float = 8.0,
    per_mutant_s: float = 2.0,
    floor_s: float = 0.25,
) -> dict[str, Any]:
    """ONE sandbox item (CLI dict shape) running every mutant against ``problem``'s tests.

    ``problem`` is a ``ParsedProblem`` (kind "function" or "program"). ``budget_s`` bounds the whole
    harness (keep it under the batch's ``timeout_s``); each mutant gets ``per_mutant_s`` at most, and
    less for a fast reference (five times the reference's time + 0.1 s, at least ``floor_s``).
    """
    kind = getattr(problem, "kind", "function") or "function"
    config = {
        "kind": kind,
        "reference": reference_source(problem),
        "mutants": [m.source for m in mutants],
        "tests": problem.tests,
        "entry_point": problem.entry_point,
        "cases": [{"input": i, "output": o} for i, o in _cases(problem)],
        "compare": getattr(problem, "compare", "") or "whitespace",
        "float_tol": DEFAULT_FLOAT_TOL,
        "compare_source": _compare_source() if kind == "program" else "",
        "budget_s": budget_s,
        "per_mutant_s": per_mutant_s,
        "floor_s": floor_s,
    }
    code = _HARNESS.replace("__CONFIG__", repr(json.dumps(config)), 1)
    return {"id": item_id, "code": code, "tests": "assert True", "entry_point": ""}


@cache
def _compare_source() -> str:
    return Path(compare.__file__).read_text(encoding="utf-8")


def reference_source(problem: Any) -> str:
    """The program the mutants are made of: the whole program, or prompt + solution for a function."""
    if (getattr(problem, "kind", "function") or "function") == "program":
        return str(problem.solution)
    return str(problem.prompt) + str(problem.solution)


def _cases(problem: Any) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for case in getattr(problem, "cases", ()) or ():
        if isinstance(case, dict):
            found.append((str(case.get("input", "")), str(case.get("output", ""))))
        else:
            found.append((str(case[0]), str(case[1])))
    return found


def harness_report(result: dict[str, Any]) -> dict[str, Any] | None:
    """The harness's JSON line from a sandbox result (its last line holding "killed"), or None."""
    for line in reversed(str(result.get("stdout", "")).splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and isinstance(doc.get("killed"), list):
                return doc
    return None


def mutation_score(result: dict[str, Any], mutants: list[Mutant]) -> MutationReport:
    """The tests' mutation score from the harness item's sandbox ``result`` (CLI dict shape)."""
    report = harness_report(result)
    if report is None:
        why = result.get("error_class", "") or "no report"
        return MutationReport(0.0, 0, 0, error=f"the mutant harness did not report ({why})")
    if report.get("reference") != "survived":
        return MutationReport(
            0.0,
            0,
            0,
            error=f"the reference did not pass inside the mutant harness ({report.get('reference')})",
        )
    flags = report["killed"]
    if len(flags) != len(mutants):
        return MutationReport(
            0.0, 0, 0, error=f"the harness reported {len(flags)} mutants, not {len(mutants)}"
        )
    run = [(m, f) for m, f in zip(mutants, flags, strict=True) if f is not None]
    killed = sum(1 for _, f in run if f)
    survivors = [m.description for m, f in run if not f]
    score = killed / len(run) if run else 0.0
    return MutationReport(
        score=round(score, 4),
        killed=killed,
        total=len(run),
        survivors=survivors,
        not_run=len(flags) - len(run),
    )
