"""The diversity measures' cost on a version (datasets_app/diversity.py), against the near-duplicate
pass the analysis already makes over the same version (its anchor, datasets_app/analysis.py), in the
same run; and the per-step measures of a run's completions.

A version of N generated problems (datasets_app/generation.py, seed 1) measured on the default sample
(500) against an ancestor of N others (seed 0): every one of the ancestor's problems is signed, since the
sample's new problems are checked against all of them. Plain Python, no database.

    PYTHONPATH=. python bench/diversity.py [N]
"""

import json
import statistics
import sys
import time

from datasets_app.analysis import near_duplicates
from datasets_app.diversity import ProblemSample, step_measures, version_measures
from datasets_app.generation import generate
from datasets_app.parsing import text_hash

FAMILIES = ["arithmetic", "strings", "lists", "dicts"]


def version(n: int, seed: int) -> list[ProblemSample]:
    return [
        ProblemSample(
            key=text_hash(r["prompt"] + r["solution"]),
            prompt=r["prompt"],
            solution=r["solution"],
            tests_total=4,
        )
        for r in generate(families=FAMILIES, n=n, seed=seed)
    ]


def timed(fn, repeats=3):
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    old, new = version(n, 0), version(n, 1)
    old_keys = {p.key for p in old}
    old_texts = [p.prompt + "\n" + p.solution for p in old]
    anchor_s, _ = timed(
        lambda: near_duplicates((i, p.prompt + "\n" + p.solution) for i, p in enumerate(new)), repeats=1
    )
    measure_s, m = timed(
        lambda: version_measures(new, ancestor_keys=old_keys, ancestor_texts=old_texts, size=500)
    )
    completions = [p.prompt + p.solution for p in new[:256]]
    step_s, _ = timed(lambda: step_measures(completions))
    print(
        f"version of {n}, ancestor of {n}: measures {measure_s:.2f} s; the analysis' near-duplicate pass "
        f"{anchor_s:.2f} s; one step of 256 completions {step_s * 1000:.0f} ms"
    )
    print(
        f"generated templates: shapes_frac {m['shapes_frac']}, ngram_frac {m['ngram_frac']}, "
        f"near_dup_rate {m['near_dup_rate']}, ancestor_near_dup_rate {m['ancestor_near_dup_rate']}"
    )
    print(
        json.dumps(
            {
                "problems": n,
                "measures_s": round(measure_s, 3),
                "near_dup_pass_s": round(anchor_s, 3),
                "ratio": round(measure_s / anchor_s, 3),
                "step_256_ms": round(step_s * 1000, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
