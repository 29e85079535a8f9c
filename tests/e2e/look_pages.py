"""The main pages with something on them, for the look-and-feel checks (tests/e2e/test_a11y_browser.py,
tests/e2e/test_look_browser.py) and the docs screenshots (bench/screenshots.py): one call makes a user,
two finished runs with a few hundred metric points, failing generations to review, a dataset version,
a registered model, an evaluation, a node, a teammate, a sweep of the two runs and an alert rule, and
says where each page is."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

PASSWORD = "correct horse battery"
KEYS = ("reward/mean", "pass_rate", "kl", "entropy", "clip_frac", "length/mean", "time/step_s", "cost/usd")


@dataclass
class LookPages:
    username: str
    paths: dict[str, str]  # page name -> path, in the order a person would visit them


def look_pages_build(*, username: str = "lee", steps: int = 60, markup_in_names: bool = True) -> LookPages:
    """`markup_in_names`: one run's name holds HTML, which every page must show as text (the tests keep it;
    the docs' screenshots leave it out)."""
    from runs.alerts.services import RuleInput, alert_rule_create
    from runs.evals.models import EvalJob
    from runs.metric_store import metric_points_write
    from runs.models import Node, Run, RunStatus
    from runs.review.services import review_generations_scan
    from runs.spend.models import CostEntry
    from runs.sweeps.models import Sweep, SweepRun
    from tests.factories import (
        DatasetVersionFactory,
        GenerationFactory,
        ProblemFactory,
        RegisteredModelFactory,
        RunFactory,
        UserFactory,
    )

    # A team admin, so that the team's page (with a member to remove) is one of the pages.
    user = UserFactory(username=username, password=PASSWORD, membership__role="admin")
    UserFactory(username=f"{username}-teammate")
    version = DatasetVersionFactory(dataset__name="mbpp-synthetic", dataset__created_by=user, problem_count=3)
    problems = [ProblemFactory(version=version, task_id=f"Look/{i}") for i in range(3)]
    now = timezone.now()
    runs = []
    second = "grpo-kl-0.02 <b>escaped</b>" if markup_in_names else "grpo-kl-0.02"
    for i, name in enumerate(("grpo-baseline", second)):
        run = RunFactory(
            name=name,
            created_by=user,
            dataset_version=version,
            status=RunStatus.SUCCEEDED,
            started_at=now - timezone.timedelta(hours=2),
            finished_at=now - timezone.timedelta(minutes=5),
            config={"steps": steps, "lr": 1e-5 * (i + 1), "kl_coef": 0.02 * i},
            last_step=steps - 1,
        )
        points = []
        for step in range(steps):
            t = step / max(1, steps - 1)
            values = {
                "reward/mean": 0.2 + 0.6 * (1 - math.exp(-3 * t)) - 0.05 * i,
                "pass_rate": 0.15 + 0.55 * t - 0.04 * i + 0.03 * math.sin(step),
                "kl": 0.001 + 0.02 * t * (1 + i),
                "entropy": 1.2 - 0.5 * t,
                "clip_frac": 0.05 + 0.02 * math.cos(step / 3),
                "length/mean": 180 + 40 * t,
                "time/step_s": 9 + math.sin(step / 5),
                "cost/usd": 0.04 * step,
            }
            points += [(run.pk, key, step, value, now) for key, value in values.items()]
        metric_points_write(points)  # as ingest writes them: the rollups and the key index too
        runs.append(run)
    classes = ["wrong_answer", "timeout", "wrong_answer", "runtime_error", "timeout"]
    generations = [
        GenerationFactory(run=runs[0], step=step, problem_id=f"Look/{step % 3}", error_class=cls, stderr="")
        for step, cls in enumerate(classes)
    ]
    review_generations_scan(run_id=runs[0].pk, generations=generations, now=now)
    model = RegisteredModelFactory(name="tiny-coder", registered_by=user)
    EvalJob.objects.create(
        team=runs[0].team,
        created_by=user,
        model=model,
        builtin_set="humaneval",
        builtin_problems=164,
        eval_protocol="pass@k",
        eval_samples=4,
        eval_k=1,
        max_new_tokens=256,
        pool="cpu",
        status="succeeded",
        result={"pass@1": 0.31},
        started_at=now - timezone.timedelta(minutes=30),
        finished_at=now - timezone.timedelta(minutes=20),
    )
    Node.objects.create(
        name="gpu@node-a",
        hostname="node-a",
        pool="cpu",
        cpu_count=16,
        registered_at=now - timezone.timedelta(hours=3),
        last_heartbeat_at=now,
    )
    a, b = runs
    for days_ago, usd in ((2, "3.20"), (1, "5.75"), (0, "1.10")):  # the spend page's chart
        CostEntry.objects.create(
            run=a, day=now.date() - timezone.timedelta(days=days_ago), usd=Decimal(usd), gpu_hours=1
        )
    sweep = Sweep.objects.create(
        name="lr-kl-grid",
        team=a.team,
        created_by=user,
        dataset_version=version,
        pool=a.pool,
        base_config={"steps": steps},
        axes={"lr": [1e-5, 2e-5], "kl_coef": [0.0, 0.02]},
    )
    for index, run in enumerate(runs, start=1):
        SweepRun.objects.create(
            sweep=sweep,
            run=run,
            index=index,
            params={"lr": run.config["lr"], "kl_coef": run.config["kl_coef"]},
        )
    rule, _ = alert_rule_create(
        user=user,
        data=RuleInput(
            condition="above", team_id=a.team_id, name="KL blow-up", metric_key="kl", threshold=0.03
        ),
    )
    assert Run.objects.filter(pk__in=[a.pk, b.pk]).count() == 2
    return LookPages(
        username=username,
        paths={
            "runs": "/runs/",
            "run": f"/runs/{a.pk}/",
            "launch": "/runs/new/",
            "compare": f"/runs/compare/?ids={a.pk},{b.pk}",
            "datasets": "/datasets/",
            "dataset-version": f"/datasets/versions/{version.pk}/",
            "review": f"/review/runs/{a.pk}/",
            "spend": "/spend/",
            "nodes": "/runs/nodes/",
            "account": "/account/",
            "evals": "/evals/",
            "models": "/models/",
            "problem": f"/datasets/problems/{problems[0].pk}/",  # highlighted code
            "team": f"/teams/{a.team_id}/",
            "sweeps": "/sweeps/",
            "sweep": f"/sweeps/{sweep.pk}/",
            "alerts": "/alerts/",
            "alert": f"/alerts/rules/{rule.pk}/",
        },
    )


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
