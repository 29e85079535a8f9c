"""Diversity and collapse measures: of a dataset version's problems (on a fixed-size sample) and of a run's
completions at one step. Pure functions, no Django (docs/datasets.md, "Diversity and collapse").

- Near-duplicate rate: the share of the sample that nearly duplicates an earlier problem of the sample
  (MinHash + LSH of datasets_app/analysis.py, estimated Jaccard ≥ NEAR_DUPLICATE_JACCARD), and the share of
  the sample's *new* problems (absent, by content hash, from every ancestor) that nearly duplicate an
  ancestor's problem.
- Shapes: each reference's AST with names, attributes and constants erased, hashed; distinct / total
  (a HumanEval-style solution, a function's body, is read inside its prompt's function).
- Lexical diversity: distinct word 3-grams / total word 3-grams over the sample's statements.
- Difficulty spread: p10/p50/p90 (nearest rank) of the references' duration, CPU time and test count.

The sample is the `size` problems whose content hash ranks lowest under sha256: the same problems are
chosen whatever the order of the file, and a problem carried over between versions is sampled in both.
Ratios of distinct to total depend on the sample's size; the fixed size keeps versions comparable.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets_app.analysis import (
    BANDS,
    NEAR_DUPLICATE_JACCARD,
    PERMUTATIONS,
    near_duplicates,
    signature,
    tokens,
)

NGRAM = 3
_ROWS = PERMUTATIONS // BANDS
_WORDS = re.compile(r"\w+")
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
UNPARSEABLE = "unparseable"
# The measures a relative drop flags (higher is more diverse) and the rates a ceiling flags.
DIVERSITY_KEYS = ("shapes_frac", "ngram_frac")
NEAR_DUP_KEYS = ("near_dup_rate", "ancestor_near_dup_rate")
LABELS = {
    "shapes_frac": "distinct reference shapes",
    "ngram_frac": "distinct statement 3-grams",
    "near_dup_rate": "near-duplicates within the version",
    "ancestor_near_dup_rate": "new problems nearly duplicating an earlier version",
}


@dataclass(frozen=True)
class ProblemSample:
    """What the measures read of one problem. `key` is its content hash (problem_hash)."""

    key: str
    prompt: str
    solution: str
    duration_ms: int | None = None
    cpu_ms: int | None = None
    tests_total: int | None = None


def sample(problems: Iterable[ProblemSample], *, size: int) -> list[ProblemSample]:
    """The `size` problems whose key ranks lowest under sha256 (ties by prompt), in that order."""

    def rank(p: ProblemSample) -> tuple[str, str]:
        return hashlib.sha256(p.key.encode()).hexdigest(), p.prompt

    return sorted(problems, key=rank)[: max(0, size)]


class _Shape(ast.NodeVisitor):
    """Node types in a fixed walk, with every name, attribute, argument name and constant left out."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr_context):
            return
        self.parts.append(type(node).__name__ + "(")
        super().generic_visit(node)
        self.parts.append(")")


def shape(source: str) -> str:
    """A fingerprint of the code's structure: two programs that differ only in names and constants share
    it. Code that does not parse gets UNPARSEABLE."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return UNPARSEABLE
    visitor = _Shape()
    try:
        visitor.visit(tree)
    except RecursionError:
        return UNPARSEABLE
    return hashlib.sha1("".join(visitor.parts).encode(), usedforsecurity=False).hexdigest()[:16]


def reference_shape(prompt: str, solution: str) -> str:
    """A reference's shape: its solution's, when the solution is whole code (MBPP, programs), else the
    prompt's function with the solution as its body (HumanEval's layout, a body alone does not parse)."""
    alone = shape(solution)
    return alone if alone != UNPARSEABLE else shape(prompt + solution)


def code_of(completion: str) -> str:
    """A completion's code: the first fenced block if it has one, else the whole text."""
    fenced = _FENCE.search(completion)
    return fenced.group(1) if fenced else completion


def _ngram_counts(texts: Iterable[list[str]], n: int) -> tuple[int, int]:
    seen: set[tuple[str, ...]] = set()
    total = 0
    for toks in texts:
        for i in range(len(toks) - n + 1):
            seen.add(tuple(toks[i : i + n]))
            total += 1
    return len(seen), total


def word_tokens(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def quantiles(values: Iterable[int | float | None]) -> dict[str, float] | None:
    """p10, p50 and p90 by nearest rank (a value of the data, no interpolation); None when empty."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None

    def rank(q: float) -> float:
        return float(data[max(0, min(len(data) - 1, int(np.ceil(q * len(data))) - 1))])

    return {"p10": rank(0.1), "p50": rank(0.5), "p90": rank(0.9)}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def ancestor_near_duplicates(new: Sequence[tuple[int, str]], ancestors: Iterable[str]) -> set[int]:
    """Keys of `new` whose text nearly duplicates one of `ancestors` (the same MinHash + LSH bands)."""
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    sigs: list[np.ndarray] = []
    for text in ancestors:
        sig = signature(text)
        if not sig.any():
            continue
        for band in range(BANDS):
            buckets[(band, sig[band * _ROWS : (band + 1) * _ROWS].tobytes())].append(len(sigs))
        sigs.append(sig)
    found: set[int] = set()
    for key, text in new:
        sig = signature(text)
        if not sig.any():
            continue
        candidates: set[int] = set()
        for band in range(BANDS):
            candidates.update(buckets.get((band, sig[band * _ROWS : (band + 1) * _ROWS].tobytes()), ()))
        if any(float(np.mean(sigs[c] == sig)) >= NEAR_DUPLICATE_JACCARD for c in candidates):
            found.add(key)
    return found


def version_measures(
    problems: Iterable[ProblemSample],
    *,
    ancestor_keys: set[str] | frozenset[str] = frozenset(),
    ancestor_texts: Iterable[str] = (),
    size: int,
) -> dict[str, Any]:
    """The measures of a version's problems. `ancestor_keys`: content hashes of the earlier versions'
    problems (a carried-over problem is not new); `ancestor_texts`: their prompt + solution texts, read
    only when the sample has new problems."""
    every = list(problems)
    chosen = sample(every, size=size)
    texts = [p.prompt + "\n" + p.solution for p in chosen]
    within = near_duplicates(enumerate(texts))
    new = [(i, texts[i]) for i, p in enumerate(chosen) if p.key not in ancestor_keys]
    near_old = ancestor_near_duplicates(new, ancestor_texts) if new and ancestor_keys else set()
    shapes = [reference_shape(p.prompt, p.solution) for p in chosen]
    parsed = [s for s in shapes if s != UNPARSEABLE]
    ngram_distinct, ngram_total = _ngram_counts((word_tokens(p.prompt) for p in chosen), NGRAM)
    return {
        "problems": len(every),
        "sample": len(chosen),
        "near_dup_rate": _rate(len(within), len(chosen)),
        "new_in_sample": len(new),
        "carried_frac": _rate(len(chosen) - len(new), len(chosen)) if ancestor_keys else None,
        "ancestor_near_dup_rate": _rate(len(near_old), len(new)) if ancestor_keys else None,
        "shapes_distinct": len(set(parsed)),
        "shapes_frac": _rate(len(set(parsed)), len(parsed)),
        "unparseable": len(shapes) - len(parsed),
        "ngram_distinct": ngram_distinct,
        "ngram_total": ngram_total,
        "ngram_frac": _rate(ngram_distinct, ngram_total),
        "duration_ms": quantiles(p.duration_ms for p in chosen),
        "cpu_ms": quantiles(p.cpu_ms for p in chosen),
        "tests_total": quantiles(p.tests_total for p in chosen),
    }


def step_measures(completions: Sequence[str]) -> dict[str, float]:
    """A run's completions at one step: distinct shapes of their code (code that does not parse counts
    as one shape of its own), distinct code-token 3-grams / total, and the near-duplicate rate. Empty
    measures (no completion, no 3-gram) are left out."""
    if not completions:
        return {}
    codes = [code_of(c) for c in completions]
    out: dict[str, float] = {}
    out["diversity/shapes_frac"] = round(len({shape(c) for c in codes}) / len(codes), 4)
    distinct, total = _ngram_counts((tokens(c) for c in codes), NGRAM)
    if total:
        out["diversity/ngram_frac"] = round(distinct / total, 4)
    out["diversity/near_dup_rate"] = round(len(near_duplicates(enumerate(codes))) / len(codes), 4)
    return out


def version_flags(
    current: dict[str, Any], previous: dict[str, Any] | None, *, max_drop: float, max_near_dup: float
) -> list[dict[str, Any]]:
    """What is wrong with a version's measures: a diversity measure that fell by more than `max_drop`
    (relative) from the previous version's, a near-duplicate rate above `max_near_dup`. Each flag has
    the measure, its numbers and a sentence for people."""
    flags: list[dict[str, Any]] = []
    for key in DIVERSITY_KEYS:
        now, before = current.get(key), (previous or {}).get(key)
        if now is None or not before:
            continue
        drop = (before - now) / before
        if drop > max_drop:
            flags.append(
                {
                    "measure": key,
                    "value": now,
                    "previous": before,
                    "threshold": max_drop,
                    "message": f"{LABELS[key]} fell {drop:.0%} ({before:.3f} → {now:.3f}; "
                    f"more than the {max_drop:.0%} allowed)",
                }
            )
    for key in NEAR_DUP_KEYS:
        now = current.get(key)
        if now is not None and now > max_near_dup:
            flags.append(
                {
                    "measure": key,
                    "value": now,
                    "previous": (previous or {}).get(key),
                    "threshold": max_near_dup,
                    "message": f"{LABELS[key]}: {now:.1%} of the sample (above {max_near_dup:.0%})",
                }
            )
    return flags
