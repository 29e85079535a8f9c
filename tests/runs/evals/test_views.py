"""The Evaluations pages: the list (empty state, polling), the form, a job's detail (escaping what a
node or a dataset wrote, unscored problems marked) and the compare page (problems that differ first).
Who may see and post what: tests/controlplane/accounts/test_permissions.py."""

import pytest
from django.urls import reverse

from runs.evals.models import EvalJob, EvalJobStatus
from runs.models import RunStatus
from tests.factories import DatasetVersionFactory, ProblemFactory, RegisteredModelFactory, RunFactory
from tests.runs.evals.factories import eval_job, node_result

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("x")</script>'


def test_with_no_evaluation_the_list_says_how_to_start_one(logged_in):
    page = logged_in.get(reverse("evals:list")).content.decode()

    assert 'data-testid="evals-empty"' in page
    assert reverse("evals:new") in page
    assert "python manage.py evaluate" in page
    assert 'hx-trigger="every 2s"' not in page  # nothing to wait for


def test_the_list_shows_pass_at_1_and_polls_while_a_job_waits(logged_in, user):
    eval_job(user, status=EvalJobStatus.SUCCEEDED, result=node_result([("T/0", 4, 3, False)]))
    eval_job(user, status=EvalJobStatus.RUNNING)

    page = logged_in.get(reverse("evals:list")).content.decode()

    assert ">0.750<" in page  # 3 of 4
    assert 'hx-trigger="every 2s"' in page
    partial = logged_in.get(reverse("evals:list"), headers={"HX-Request": "true", "HX-Target": "evals"})
    assert partial.content.decode().lstrip().startswith('<section class="card" id="evals"')


def test_a_job_escapes_a_hostile_problem_id_and_error_and_marks_unscored_problems(logged_in, user):
    result = node_result([(HOSTILE, 4, 1, False), ("Flaky/1", 4, 0, True)])
    job = eval_job(user, status=EvalJobStatus.SUCCEEDED, result=result)
    failed = eval_job(user, status=EvalJobStatus.FAILED)
    EvalJob.objects.filter(pk=failed.pk).update(error=f"refused: {HOSTILE}")

    page = logged_in.get(reverse("evals:detail", args=[job.pk])).content.decode()
    failed_page = logged_in.get(reverse("evals:detail", args=[failed.pk])).content.decode()

    assert HOSTILE not in page and HOSTILE not in failed_page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;script&gt;" in failed_page
    assert page.count('data-testid="unscored"') == 1
    assert 'data-problem="Flaky/1" class="unscored"' in page
    assert "Evaluate again" in failed_page


def test_unscored_problems_and_n_min_are_shown_on_the_list_the_job_and_compare(logged_in, user):
    # given a result with 1 unscored problem of 3, and one whose node sent no unscored count in its totals
    result = node_result([("T/0", 4, 1, False), ("T/1", 3, 3, False), ("Flaky/2", 4, 0, True)])
    job = eval_job(user, status=EvalJobStatus.SUCCEEDED, result=result)
    bare = node_result([("T/0", 4, 2, False), ("Flaky/2", 4, 0, True)])
    del bare["totals"]["eval/problems_unscored"]
    other = eval_job(user, status=EvalJobStatus.SUCCEEDED, result=bare)

    listed = logged_in.get(reverse("evals:list")).content.decode()
    page = logged_in.get(reverse("evals:detail", args=[job.pk])).content.decode()
    bare_page = logged_in.get(reverse("evals:detail", args=[other.pk])).content.decode()
    compared = logged_in.get(reverse("evals:compare"), {"a": job.pk, "b": other.pk}).content.decode()

    # then each counts the unscored problem and names the fewest valid samples (3, on T/1)
    row = listed[listed.index(f'data-eval="{job.pk}"') :]
    assert '<td data-testid="unscored">1</td>' in row and '<td data-testid="n-min">3</td>' in row
    assert "on 2 scored problems" in page
    assert '<span data-testid="unscored-count" class="status status-failed"' in page
    assert "1 unscored</span>" in page and "n_min 3</span>" in page
    assert "1 unscored</span>" in bare_page  # counted from the rows the node marked
    assert "<th>Unscored problems</th><td>1</td><td>1</td></tr>" in compared
    assert '<tr data-testid="compare-n-min"><th>n_min</th><td>3</td><td>4</td></tr>' in compared


def test_evaluate_again_on_a_succeeded_job_opens_the_new_job(logged_in, user):
    job = eval_job(user, status=EvalJobStatus.SUCCEEDED, result=node_result([("T/0", 4, 1, False)]))
    ProblemFactory(version=job.dataset_version)
    running = eval_job(user, status=EvalJobStatus.RUNNING)

    page = logged_in.get(reverse("evals:detail", args=[job.pk])).content.decode()
    assert 'data-testid="eval-again"' in page
    response = logged_in.post(reverse("evals:again", args=[job.pk]))  # the send waits for a commit
    refused = logged_in.post(reverse("evals:again", args=[running.pk]), follow=True)

    again = EvalJob.objects.exclude(pk__in=[job.pk, running.pk]).get()
    assert response["Location"] == reverse("evals:detail", args=[again.pk])
    assert (again.model, again.dataset_version, again.status) == (job.model, job.dataset_version, "queued")
    assert "is running: evaluate it again once it has finished" in refused.content.decode()
    assert 'data-testid="eval-again"' not in refused.content.decode()  # a waiting job offers none


def test_the_form_offers_the_teams_ready_models_and_versions_and_prefills_from_a_model_page(logged_in, user):
    model = RegisteredModelFactory(registered_by=user, name=HOSTILE)
    RegisteredModelFactory(registered_by=user, name="still-pending", status="pending")
    version = DatasetVersionFactory(dataset__created_by=user, dataset__name="mbpp-import")

    page = logged_in.get(reverse("evals:new"), {"model": model.pk}).content.decode()

    assert f'<option value="model:{model.pk}" selected>' in page
    assert "still-pending" not in page
    assert f'value="version:{version.pk}"' in page and 'value="builtin:humaneval"' in page
    assert HOSTILE not in page
    detail = logged_in.get(reverse("registry:detail", args=[model.pk])).content.decode()
    assert f"{reverse('evals:new')}?model={model.pk}" in detail


def test_posting_the_form_queues_the_job_and_shows_its_page(
    logged_in, user, django_capture_on_commit_callbacks
):
    model = RegisteredModelFactory(registered_by=user)
    version = DatasetVersionFactory(dataset__created_by=user)
    ProblemFactory(version=version)
    data = {
        "subject": f"model:{model.pk}",
        "eval_set": f"version:{version.pk}",
        "builtin_problems": 20,
        "eval_protocol": "codex",
        "eval_samples": 8,
        "eval_k": 4,
        "eval_temperature": "",
        "max_new_tokens": 48,
    }

    response = logged_in.post(reverse("evals:new"), data)  # the send waits for a commit that never comes

    job = EvalJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("evals:detail", args=[job.pk])
    assert (job.model, job.dataset_version, job.eval_temperature, job.status) == (
        model,
        version,
        None,
        "queued",
    )


def test_a_refusal_shows_on_the_form_under_its_field(logged_in, user):
    model = RegisteredModelFactory(registered_by=user)
    empty = DatasetVersionFactory(dataset__created_by=user)  # no verified problem
    data = {"subject": f"model:{model.pk}", "eval_set": f"version:{empty.pk}", "builtin_problems": 0}
    data.update(eval_protocol="codex", eval_samples=8, eval_k=4, max_new_tokens=48)

    response = logged_in.post(reverse("evals:new"), data)
    data.update(eval_set="builtin:humaneval", eval_samples=2)
    protocol = logged_in.post(reverse("evals:new"), data)

    assert response.status_code == protocol.status_code == 400
    assert f"Eval set: {empty} has no verified problems: nothing to evaluate" in response.content.decode()
    assert "Eval k: eval_k (4) must be at most eval_samples (2)" in protocol.content.decode()
    assert not EvalJob.objects.exists()


def test_compare_shows_totals_side_by_side_and_the_problems_that_differ_first(logged_in, user):
    a = eval_job(
        user,
        status=EvalJobStatus.SUCCEEDED,
        result=node_result([("T/0", 4, 4, False), ("T/1", 4, 0, False), ("T/2", 4, 2, False)]),
    )
    b = eval_job(
        user,
        status=EvalJobStatus.SUCCEEDED,
        result=node_result(
            [("T/0", 4, 4, False), ("T/1", 4, 1, False), ("T/2", 4, 2, True), ("T/3", 4, 0, False)]
        ),
    )

    page = logged_in.get(reverse("evals:compare"), {"a": a.pk, "b": b.pk}).content.decode()

    order = [page.index(f'data-problem="T/{i}"') for i in (1, 2, 3, 0)]
    assert order == sorted(order)  # T/1 (pass@1 0 vs 0.25), T/2 (unscored in b), T/3 (b's only), then T/0
    assert page.count('class="differs"') == 3
    # Totals by hand: a = (1 + 0 + 0.5) / 3; b = (1 + 0.25 + 0) / 3 over its scored problems.
    assert "<th>eval/pass@1</th><td>0.5000</td><td>0.4167</td>" in page


def test_compare_needs_two_ids(logged_in, user):
    job = eval_job(user)

    assert logged_in.get(reverse("evals:compare"), {"a": job.pk}).status_code == 400
    assert logged_in.get(reverse("evals:compare"), {"a": job.pk, "b": "x"}).status_code == 400


def test_a_finished_runs_page_links_to_its_evaluation_and_a_running_ones_does_not(logged_in, user):
    finished = RunFactory(created_by=user, status=RunStatus.SUCCEEDED)
    running = RunFactory(created_by=user, status=RunStatus.RUNNING)

    page = logged_in.get(reverse("runs:detail", args=[finished.pk])).content.decode()
    running_page = logged_in.get(reverse("runs:detail", args=[running.pk])).content.decode()

    assert f'href="{reverse("evals:new")}?run={finished.pk}" data-testid="evaluate"' in page
    assert 'data-testid="evaluate"' not in running_page
    form = logged_in.get(reverse("evals:new"), {"run": finished.pk}).content.decode()
    assert "Nothing to evaluate yet" in form  # it reported no checkpoint: not offered
