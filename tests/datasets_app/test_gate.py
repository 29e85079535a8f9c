"""The generation gate, end to end on the real sandbox: each rejection reason, and acceptance."""

import pytest

from datasets_app.corpus import corpus_cache_clear, humaneval_entries, team_corpus
from datasets_app.dedup import DedupIndex
from datasets_app.gate import REJECT_REASONS, Gate
from tests.datasets_app.gate_helpers import CLAMP_TESTS, as_program, clamp, sandbox
from tests.datasets_app.test_dedup import _humaneval
from tests.factories import DatasetFactory, DatasetVersionFactory, ProblemFactory, TeamFactory, UserFactory


def _gate(**options) -> Gate:
    return Gate(
        DedupIndex.build(humaneval_entries(), benchmarks=[k for k, _ in humaneval_entries()]), **options
    )


def _refuse(items):
    raise AssertionError(f"nothing should run, got {len(items)} items")


def test_candidates_end_accepted_or_rejected_with_their_reason():
    # given a good problem, one whose reference is wrong, one with weak tests, a HumanEval near-copy,
    # and a word-for-word copy of the good one in the same batch
    gate = _gate(timeout_s=5)
    he = _humaneval()[12]
    candidates = {
        "good": clamp(),
        "wrong": clamp(
            prompt="def clamp_low(x, lo):\n",
            entry_point="clamp_low",
            solution="    return max(x, lo) + 1\n",
            tests="def check(c):\n    assert c(1, 3) == 3\n    assert c(5, 3) == 5\n",
        ),
        "weak": clamp(
            prompt='def bound(x, lo, hi):\n    """Keep x within lo and hi, both included."""\n',
            entry_point="bound",
            tests="def check(c):\n    assert c(5, 0, 10) == 5\n",
        ),
        "copied": clamp(
            prompt=he["prompt"].replace("Return", "Give back", 1),
            entry_point="longest",
            solution=he["canonical_solution"],
            tests=he["test"],
        ),
        "again": clamp(prompt=clamp().prompt.upper()),
    }

    # when the gate checks them in one batch on the real sandbox
    found = gate.check(list(candidates.values()), sandbox(gate.limits), keys=list(candidates))
    verdicts = dict(zip(candidates, found, strict=True))

    # then each ends where it should, with a reason a person can read
    good = verdicts["good"]
    assert good.accepted and good.reason == "" and good.cpu_ms is not None
    assert good.mutation_score == round(5 / 7, 4) and len(good.survivors) == 2  # the two equivalent mutants
    assert (verdicts["wrong"].reason, verdicts["wrong"].accepted) == ("reference_fails", False)
    assert "wrong_answer" in verdicts["wrong"].detail and "assert c(1, 3) == 3" in verdicts["wrong"].detail
    weak = verdicts["weak"]
    assert weak.reason == "weak_tests" and weak.mutation_score is not None and weak.mutation_score < 0.5
    assert weak.mutation_score == round(1 / 7, 4) and len(weak.survivors) == 6
    assert "kill 1 of 7 mutants" in weak.detail and "if-body replaced by pass" in weak.detail
    assert (verdicts["copied"].reason, verdicts["copied"].near) == ("contaminated", "HumanEval/12")
    assert (verdicts["again"].reason, verdicts["again"].near) == ("duplicate", "good")
    assert {v.reason for v in verdicts.values()} <= {"", *REJECT_REASONS}


def test_an_accepted_problem_is_in_the_corpus_for_later_candidates_which_run_nothing():
    gate = _gate(timeout_s=5)
    (first,) = gate.check([clamp()], sandbox(gate.limits))
    assert first.accepted

    copy, near = gate.check(
        [
            clamp(task_id="gen/1/0"),
            clamp(task_id="gen/1/1", prompt=clamp().prompt.replace("closed", "given")),
        ],
        _refuse,
    )

    assert (copy.reason, copy.near) == ("duplicate", "gen/0/0")
    assert (near.reason, near.near) == ("near_duplicate", "gen/0/0") and "similarity" in near.detail


def test_a_reference_whose_verdict_changes_between_identical_runs_is_flaky():
    # a coin flip per run: with 16 identical runs, all alike has a chance of 2 in 65,536
    gate = _gate(timeout_s=5, reruns=15)
    coin = clamp(
        prompt="import os\n\nCOIN = os.urandom(1)[0] & 1  # once per run\n\ndef clamp(x, lo, hi):\n",
        solution="    return min(max(x, lo), hi) + COIN\n",
        tests=CLAMP_TESTS,
    )

    (verdict,) = gate.check([coin], sandbox(gate.limits))

    assert verdict.reason == "flaky" and "identical runs" in verdict.detail


def test_the_minimum_mutation_score_is_the_gates_setting():
    strict = _gate(timeout_s=5, min_mutation_score=0.9)

    (verdict,) = strict.check([clamp()], sandbox(strict.limits))

    assert verdict.reason == "weak_tests" and verdict.mutation_score == round(5 / 7, 4)
    assert "'<' -> '<='" in verdict.detail


def test_a_sandbox_failure_is_not_the_problems_fault():
    gate = _gate()
    items = gate.sandbox_items(clamp(), "k")
    results = [
        {"id": i["id"], "passed": False, "error_class": "sandbox_error", "stderr": "bwrap: no"} for i in items
    ]

    verdict = gate.decide(clamp(), "k", results)

    assert verdict.reason == "sandbox_error" and "bwrap: no" in verdict.detail


def test_a_program_problem_is_gated_on_its_cases():
    gate = _gate(timeout_s=5)
    base = clamp(
        task_id="p/0",
        prompt="Print the larger of two integers, then their sum.",
        entry_point="",
        tests="",
        solution="a, b = map(int, input().split())\nprint(a if a > b else b)\nprint(a + b)\n",
    )
    good = as_program(base, cases=[("2 3\n", "3\n5\n"), ("7 -1\n", "7\n6\n")], compare="whitespace")
    wrong = as_program(
        clamp(
            task_id="p/1", prompt="Print the smaller of the two, then the product.", solution=base.solution
        ),
        cases=[("2 3\n", "2\n6\n")],
        compare="exact",
    )

    ok, bad = gate.check([good, wrong], sandbox(gate.limits))

    # the '>' -> '>=' mutant is equivalent on these cases (a == b never happens): 2 of 3 killed
    assert ok.accepted and ok.mutation_score == round(2 / 3, 4) and ok.survivors == ("line 2: '>' -> '>='",)
    assert bad.reason == "reference_fails" and "wrong_answer" in bad.detail and "case 0" in bad.detail


@pytest.mark.django_db
def test_the_team_corpus_holds_what_the_team_reads_and_marks_the_benchmarks():
    corpus_cache_clear()
    team, other = TeamFactory(name="gate-a"), TeamFactory(name="gate-b")
    user = UserFactory()
    ours = DatasetVersionFactory(dataset=DatasetFactory(name="ours", team=team, created_by=user))
    shared = DatasetVersionFactory(dataset=DatasetFactory(name="bench", team=None, created_by=user))
    theirs = DatasetVersionFactory(dataset=DatasetFactory(name="theirs", team=other, created_by=user))
    ProblemFactory(
        version=ours, task_id="t1", prompt="def ours_one(x):\n    'Twice x.'\n", solution="    return 2 * x\n"
    )
    ProblemFactory(
        version=shared,
        task_id="s1",
        prompt="def shared_one(s):\n    'Reverse s.'\n",
        solution="    return s[::-1]\n",
    )
    ProblemFactory(
        version=theirs,
        task_id="x1",
        prompt="def theirs_one(n):\n    'n squared.'\n",
        solution="    return n * n\n",
    )

    corpus = team_corpus(team=team)

    assert len(corpus) == 164 + 2
    assert corpus.exact("def ours_one(x):\n    'Twice x.'\n\n    return 2 * x\n") == f"ours v{ours.number}/t1"
    assert corpus.exact("def theirs_one(n):\n    'n squared.'\n\n    return n * n\n") is None
    assert f"bench v{shared.number}/s1" in corpus.benchmarks and "HumanEval/0" in corpus.benchmarks
    assert f"ours v{ours.number}/t1" not in corpus.benchmarks
    # a copy each time: what a job adds stays in its own copy; a version can be left out
    corpus.add("job/0", "def added(x):\n    return x\n")
    assert len(team_corpus(team=team)) == 166
    assert len(team_corpus(team=team, exclude_version_ids=[ours.pk])) == 165


def test_the_weak_tests_threshold_is_a_setting(settings):
    from datasets_app import conf

    assert conf.gate_min_mutation_score() == 0.5
    settings.TRIAD_GATE_MIN_MUTATION_SCORE = 0.9
    assert Gate(DedupIndex(), min_mutation_score=conf.gate_min_mutation_score()).min_mutation_score == 0.9


def test_a_reference_that_passes_its_runs_then_fails_in_the_mutant_run_is_flaky():
    # given a reference that passed its three runs (its results as the sandbox gives them) and whose
    # harness then says the reference itself failed its tests there
    gate = _gate()
    problem = clamp()
    items = gate.sandbox_items(problem, "gen/0/0")
    passed = {"passed": True, "error_class": "passed", "tests_passed": 5, "tests_total": 5, "cpu_ms": 3}
    results = [{"id": item["id"], **passed} for item in items[:-1]]
    results.append({"id": items[-1]["id"], "passed": True, "error_class": "passed", "stdout": (
        '{"reference": "killed", "reference_s": 0.01, "killed": [], "timeouts": 0}\n'
    )})  # fmt: skip
    # when the gate decides
    verdict = gate.decide(problem, "gen/0/0", results)
    # then it is flaky, not the sandbox's fault
    assert (verdict.accepted, verdict.reason) == (False, "flaky")
    assert "then failed its tests in the mutant run" in verdict.detail
