"""CLI: ``python -m workers.sandbox [--backend B] [--workers N] [--mode cold|warm] < batch.json``.

Reads ``{"limits": {...}, "items": [{"id", "code", "tests", "entry_point"}]}`` on stdin (an item may
also carry a ``verifier`` and the ``task_id`` and ``prompt`` it is given; a program item has ``"kind":
"program"``, ``cases`` [{"input", "output"}], optionally ``compare``, ``float_tol`` and
``stop_at_first_failure``, and no tests, see docs/sandbox.md), writes
``{"results": [...]}`` on stdout, one per item, in order. Bad input: exit status 2 and one line on
stderr naming the item index and the field. Where isolation does not work: exit status 1 and
``sandbox unavailable: <why and what to install>`` on stderr; nothing runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .batch import run_batch
from .types import Item, Limits


class BadInput(Exception):
    pass


def parse_batch(doc: Any) -> tuple[Limits, list[Item]]:
    if not isinstance(doc, dict):
        raise BadInput("the input must be a JSON object")
    raw_limits = doc.get("limits", {})
    if not isinstance(raw_limits, dict):
        raise BadInput("limits: must be an object")
    kwargs: dict[str, Any] = {}
    for name, kind in (("timeout_s", (int, float)), ("memory_mb", (int,)), ("output_bytes", (int,))):
        if name in raw_limits:
            value = raw_limits[name]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise BadInput(f"limits.{name}: must be a number")
            kwargs[name] = value
    try:
        limits = Limits(**kwargs)
    except ValueError as e:
        raise BadInput(f"limits: {e}") from None
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise BadInput("items: missing or not a list")
    items = []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise BadInput(f"items[{i}]: must be an object")
        program = raw.get("kind") == "program"
        fields: dict[str, Any] = {}
        for name in (
            "id",
            "code",
            "tests",
            "entry_point",
            "verifier",
            "task_id",
            "prompt",
            "kind",
            "compare",
        ):
            if name not in raw:
                if name not in ("id", "code", "tests") or (program and name == "tests"):
                    continue
                raise BadInput(f"items[{i}].{name}: missing")
            if not isinstance(raw[name], str):
                raise BadInput(f"items[{i}].{name}: must be a string")
            fields[name] = raw[name]
        fields.setdefault("tests", "")
        fields.update(_program_fields(raw, i))
        try:
            items.append(Item(**fields))
        except ValueError as e:
            raise BadInput(f"items[{i}].{e}") from None
    return limits, items


def _program_fields(raw: dict[str, Any], i: int) -> dict[str, Any]:
    """An item's optional program fields (cases, float_tol, stop_at_first_failure), type-checked."""
    fields: dict[str, Any] = {}
    if "cases" in raw:
        if not isinstance(raw["cases"], list):
            raise BadInput(f"items[{i}].cases: must be a list of {{input, output}} objects")
        fields["cases"] = raw["cases"]
    if "float_tol" in raw:
        tol = raw["float_tol"]
        if isinstance(tol, bool) or not isinstance(tol, (int, float)):
            raise BadInput(f"items[{i}].float_tol: must be a number")
        fields["float_tol"] = float(tol)
    if "stop_at_first_failure" in raw:
        if not isinstance(raw["stop_at_first_failure"], bool):
            raise BadInput(f"items[{i}].stop_at_first_failure: must be true or false")
        fields["stop_at_first_failure"] = raw["stop_at_first_failure"]
    return fields


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.sandbox", description=__doc__)
    parser.add_argument(
        "--backend",
        choices=("process", "bwrap", "docker"),
        default=None,
        help="default: bwrap (or $TRIAD_SANDBOX_BACKEND); without working isolation the CLI refuses "
        "(exit 1). process: no isolation, for trusted code only",
    )
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--mode", choices=("cold", "warm"), default="cold")
    args = parser.parse_args(argv)
    try:
        limits, items = parse_batch(json.loads(sys.stdin.read()))
    except json.JSONDecodeError as e:
        print(f"invalid JSON on stdin: {e}", file=sys.stderr)
        return 2
    except BadInput as e:
        print(f"bad input: {e}", file=sys.stderr)
        return 2
    try:
        results = run_batch(items, limits, backend=args.backend, workers=args.workers, mode=args.mode)
    except RuntimeError as e:
        print(f"sandbox unavailable: {e}", file=sys.stderr)
        return 1
    json.dump({"results": [r.to_dict() for r in results]}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
