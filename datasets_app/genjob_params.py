"""A generation job's parameters, defined once: the launch form, the API and the CLI all check them here.

Plain Python (no Django): `GenerationParams.from_mapping` turns what a person sent into the typed value,
or raises `ParamsError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("function", "program")
MAX_COUNT = 5000
MAX_TOPICS = 50
MAX_SEEDS = 200


class ParamsError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class GenerationParams:
    count: int = field(
        default=20, metadata={"help": "accepted problems to reach", "min": 1, "max": MAX_COUNT}
    )
    topics: tuple[str, ...] = field(default=(), metadata={"help": "topics to vary, one per request in turn"})
    seed_problem_ids: tuple[int, ...] = field(
        default=(), metadata={"help": "problems of the dataset to vary, one per request in turn"}
    )
    difficulty: str = field(default="medium", metadata={"help": "easy, medium, hard, or your own words"})
    kind: str = field(default="function", metadata={"help": "function (asserts) or program (stdin/stdout)"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature", "min": 0.0, "max": 2.0})
    reasoning: bool = field(default=False, metadata={"help": "ask for a reasoning trace with each problem"})
    n: int = field(default=4, metadata={"help": "problems asked for per request", "min": 1, "max": 20})
    max_tokens: int = field(
        default=4096, metadata={"help": "completion tokens per request", "min": 64, "max": 65536}
    )
    budget_usd: float | None = field(default=None, metadata={"help": "stop at this many dollars", "min": 0.0})
    budget_tokens: int | None = field(default=None, metadata={"help": "stop at this many tokens", "min": 1})
    usd_per_mtok_in: float = field(
        default=0.0, metadata={"help": "price per million prompt tokens", "min": 0.0}
    )
    usd_per_mtok_out: float = field(
        default=0.0, metadata={"help": "price per million completion tokens", "min": 0.0}
    )
    timeout_s: float = field(
        default=60.0, metadata={"help": "seconds one teacher request may take", "min": 0.1, "max": 600.0}
    )
    max_requests: int | None = field(
        default=None,
        metadata={"help": "give up after this many requests (default: 5 × count ÷ n + 5)", "min": 1},
    )

    @property
    def request_cap(self) -> int:
        """The most teacher requests the job sends: a teacher whose problems all fail must not run forever."""
        if self.max_requests is not None:
            return self.max_requests
        return 5 * math.ceil(self.count / self.n) + 5

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["topics"] = list(self.topics)
        data["seed_problem_ids"] = list(self.seed_problem_ids)
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> GenerationParams:
        """Checked, with ParamsError naming the first field that is wrong; unknown fields are refused."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ParamsError(unknown[0], "unknown field")
        values: dict[str, Any] = {}
        for name, f in names.items():
            if name not in data or data[name] is None or data[name] == "":
                continue
            values[name] = _check(name, f, data[name])
        params = cls(**values)
        if params.kind not in KINDS:
            raise ParamsError("kind", f"one of {', '.join(KINDS)}, not {params.kind!r}")
        return params


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ParamsError(name, "a number, not true/false")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ParamsError(name, f"a {'whole ' if kind is int else ''}number, not {value!r}") from None
    if kind is int and isinstance(value, float) and value != number:
        raise ParamsError(name, f"a whole number, not {value!r}")
    if kind is float and not math.isfinite(number):
        raise ParamsError(name, "a finite number")
    return number


def _check(name: str, f: dataclasses.Field[Any], value: Any) -> Any:
    annotation = str(f.type)
    meta = f.metadata
    if annotation.startswith("tuple[str"):
        items = [t.strip() for t in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
            raise ParamsError(name, "a list of strings")
        items = [t.strip() for t in items if t.strip()]
        if len(items) > MAX_TOPICS or any(len(t) > 200 for t in items):
            raise ParamsError(name, f"at most {MAX_TOPICS}, each at most 200 characters")
        return tuple(items)
    if annotation.startswith("tuple[int"):
        items = [t for t in value.replace(",", " ").split()] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ParamsError(name, "a list of problem ids")
        if len(items) > MAX_SEEDS:
            raise ParamsError(name, f"at most {MAX_SEEDS}")
        return tuple(_number(name, i, int) for i in items)
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "on", "yes", "0", "false", "off", "no"):
            return value.lower() in ("1", "true", "on", "yes")
        raise ParamsError(name, f"true or false, not {value!r}")
    if annotation == "str":
        if not isinstance(value, str) or len(value) > 200:
            raise ParamsError(name, "text of at most 200 characters")
        return value.strip()
    number = _number(name, value, int if "int" in annotation else float)
    if "min" in meta and number < meta["min"]:
        raise ParamsError(name, f"at least {meta['min']}, not {number}")
    if "max" in meta and number > meta["max"]:
        raise ParamsError(name, f"at most {meta['max']}, not {number}")
    return number
