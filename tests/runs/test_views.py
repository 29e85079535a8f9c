import pytest

from runs.models import Generation, Run, RunStatus
from tests.factories import DatasetVersionFactory, ProblemFactory, RunFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/runs/", "/runs/new/", "/datasets/", "/runs/1/", "/runs/1/metrics.json"])
def test_every_page_needs_a_login(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_the_empty_runs_list_says_what_to_do_next(logged_in):
    response = logged_in.get("/runs/")

    assert b"No runs yet." in response.content
    assert b"Upload a dataset" in response.content


def test_launch_form_errors_name_the_field(logged_in):
    version = DatasetVersionFactory()

    response = logged_in.post(
        "/runs/new/",
        {
            "dataset_version": version.pk,
            "steps": 0,
            "group_size": 1,
            "prompts_per_step": 1,
            "lr": 0.001,
            "seed": 0,
            "max_new_tokens": 32,
            "sft_warmup_steps": 0,
            "sft_lr": 0.003,
            "eval_every": 0,
            "eval_problems": 0,
        },
    )

    assert response.status_code == 200
    assert b"Steps: Ensure this value is greater than or equal to 1." in response.content
    assert b"Group size: Ensure this value is greater than or equal to 2." in response.content
    assert Run.objects.count() == 0


def test_launching_from_the_form_redirects_to_the_run(logged_in, django_capture_on_commit_callbacks):
    version = ProblemFactory().version

    with django_capture_on_commit_callbacks(execute=False):
        response = logged_in.post(
            "/runs/new/",
            {
                "dataset_version": version.pk,
                "steps": 3,
                "group_size": 4,
                "prompts_per_step": 2,
                "lr": 0.001,
                "seed": 1,
                "max_new_tokens": 32,
                "sft_warmup_steps": 2,
                "sft_lr": 0.003,
                "eval_every": 0,
                "eval_problems": 0,
            },
        )

    run = Run.objects.get()
    assert response.status_code == 302 and response.url == f"/runs/{run.pk}/"
    assert run.config["seed"] == 1
    assert run.config["sft_warmup_steps"] == 2


def test_generated_code_is_escaped_on_the_run_page(logged_in):
    run = RunFactory(status=RunStatus.RUNNING, name="<b>bold</b>")
    Generation.objects.create(
        run=run,
        step=0,
        problem_id="P",
        completion="<script>alert(1)</script>",
        reward=0,
        passed=False,
        error_class="runtime_error",
        stderr="<img src=x onerror=alert(2)>",
    )

    response = logged_in.get(f"/runs/{run.pk}/")

    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert b"<img src=x" not in response.content
    assert b"<b>bold</b>" not in response.content


def test_the_run_page_charts_the_critic_and_the_audit_only_for_runs_that_use_them(logged_in):
    skipping = RunFactory(config={"steps": 5, "critic": True, "critic_skip": True})
    shadow = RunFactory(config={"steps": 5, "critic": True})
    plain = RunFactory(config={"steps": 5})

    pages = {run: logged_in.get(f"/runs/{run.pk}/").content.decode() for run in (skipping, shadow, plain)}

    assert (
        'data-key="critic/accuracy"' in pages[skipping]
        and 'data-key="critic/audit_error_rate"' in pages[skipping]
    )
    assert 'data-key="critic/accuracy"' in pages[shadow] and "critic/audit_error_rate" not in pages[shadow]
    assert "critic/" not in pages[plain]


def test_the_status_partial_is_rendered_for_htmx(logged_in):
    run = RunFactory(status=RunStatus.RUNNING)

    response = logged_in.get(f"/runs/{run.pk}/", headers={"HX-Request": "true", "HX-Target": "run-status"})

    assert b'id="run-status"' in response.content
    assert b"<html" not in response.content
    assert b"Cancel" in response.content


def test_cancel_button_moves_a_running_run_to_cancelling(logged_in):
    run = RunFactory(status=RunStatus.RUNNING)

    logged_in.post(f"/runs/{run.pk}/cancel/")

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLING


def test_metrics_json_backfills_after_a_step(logged_in, client):
    from django.utils import timezone

    from runs.models import MetricPoint

    run = RunFactory()
    for step in range(3):
        MetricPoint.objects.create(run=run, key="loss", step=step, value=step / 10, wall_time=timezone.now())

    response = logged_in.get(f"/runs/{run.pk}/metrics.json?after_step=0")

    assert response.json() == {"series": {"loss": [[1, 0.1], [2, 0.2]]}, "truncated": False, "keys": ["loss"]}


def test_a_warm_up_as_long_as_the_run_is_refused(logged_in):
    version = DatasetVersionFactory()

    response = logged_in.post(
        "/runs/new/",
        {
            "dataset_version": version.pk,
            "steps": 5,
            "group_size": 4,
            "prompts_per_step": 2,
            "lr": 0.001,
            "seed": 0,
            "max_new_tokens": 32,
            "sft_warmup_steps": 5,
            "sft_lr": 0.003,
        },
    )

    assert b"sft_warmup_steps (5) must be fewer than steps (5)" in response.content
    assert Run.objects.count() == 0


def test_clone_prefills_the_launch_form_with_the_runs_settings(logged_in):
    run = RunFactory(name="baseline", config={"steps": 7, "group_size": 8, "lr": 0.0005, "seed": 3})

    response = logged_in.get(f"/runs/new/?clone={run.pk}")

    content = response.content.decode()
    assert 'value="baseline (clone)"' in content
    assert 'name="steps" value="7"' in content
    assert 'name="group_size" value="8"' in content


def test_resume_button_requeues_a_lost_run(logged_in, django_capture_on_commit_callbacks):
    run = RunFactory(status=RunStatus.LOST)

    with django_capture_on_commit_callbacks(execute=False):
        logged_in.post(f"/runs/{run.pk}/resume/")

    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_resume_button_on_a_fleet_run_without_a_fleet_says_why_and_changes_nothing(logged_in, settings):
    run = RunFactory(status=RunStatus.LOST, config={"steps": 2, "sandbox_mode": "fleet"})
    settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND = "filesystem://", None

    page = logged_in.post(f"/runs/{run.pk}/resume/", follow=True).content.decode()

    assert f"Run #{run.pk} not resumed: this control plane has no sandbox fleet" in page
    run.refresh_from_db()
    assert run.status == RunStatus.LOST


def test_compare_page_shows_the_differing_settings_and_a_summary(logged_in):
    a = RunFactory(name="low-lr", config={"lr": 0.0001, "seed": 0})
    b = RunFactory(name="high-lr", config={"lr": 0.01, "seed": 0})

    response = logged_in.get(f"/runs/compare/?ids={a.pk},{b.pk}")

    content = response.content.decode()
    assert response.status_code == 200
    assert "low-lr" in content and "high-lr" in content
    assert '<th title="lr">Learning rate</th>' in content and '<th title="seed">' not in content


# No ids at all is the run picker (tests/runs/test_compare_picker.py); ids that name nothing are refused.
@pytest.mark.parametrize(("ids", "message"), [("1,x", "not a run id"), (",", "This field is required")])
def test_compare_with_bad_ids_says_what_is_wrong(logged_in, ids, message):
    response = logged_in.get(f"/runs/compare/?ids={ids}")

    assert response.status_code == 400
    assert message in response.content.decode()


def test_metrics_json_refuses_a_bad_parameter_by_name(logged_in):
    run = RunFactory()

    response = logged_in.get(f"/runs/{run.pk}/metrics.json?max_points=5")

    assert response.status_code == 400
    assert response.json()["field"] == "max_points"


def test_runs_list_paginates(logged_in):
    for _ in range(55):
        RunFactory()

    first = logged_in.get("/runs/")
    second = logged_in.get("/runs/?page=2")

    assert first.content.count(b'name="pick"') == 50
    assert second.content.count(b'name="pick"') == 5
    assert b"Page 2 of 2" in second.content


def test_launching_on_unverified_problems_is_refused_on_the_field(logged_in):
    from datasets_app.models import ProblemStatus

    version = ProblemFactory(status=ProblemStatus.PENDING).version

    response = logged_in.post(
        "/runs/new/",
        {
            "dataset_version": version.pk,
            "steps": 5,
            "group_size": 4,
            "prompts_per_step": 2,
            "lr": 0.001,
            "seed": 0,
            "max_new_tokens": 32,
            "sft_warmup_steps": 0,
            "sft_lr": 0.003,
            "eval_every": 0,
            "eval_problems": 0,
        },
    )

    assert response.status_code == 200
    assert "has no verified problems (1 pending)" in response.content.decode()
    assert Run.objects.count() == 0


LAUNCH_FIELDS = {
    "steps": 5,
    "group_size": 4,
    "prompts_per_step": 2,
    "lr": 0.001,
    "seed": 0,
    "max_new_tokens": 32,
    "sft_warmup_steps": 0,
    "sft_lr": 0.003,
    "eval_every": 0,
    "eval_problems": 0,
}


def test_a_preset_in_the_url_fills_the_fields_and_the_yaml(logged_in):
    DatasetVersionFactory()

    response = logged_in.get("/runs/new/?preset=demo")

    content = response.content.decode()
    assert '<option value="demo" selected>Demo learning recipe</option>' in content
    assert 'name="steps" value="600"' in content
    assert 'name="sft_warmup_steps" value="100"' in content
    assert "steps: 600\n" in content and "max_new_tokens: 24\n" in content
    assert "checkpoint_every: 50\n" in content


def test_the_yaml_overrides_the_fields(logged_in, django_capture_on_commit_callbacks):
    version = ProblemFactory().version

    with django_capture_on_commit_callbacks(execute=False):
        response = logged_in.post(
            "/runs/new/",
            {
                **LAUNCH_FIELDS,
                "steps": 0,
                "dataset_version": version.pk,
                "config_yaml": "steps: 9\ntemperature: 0.7\n",
            },
        )

    run = Run.objects.get()
    assert response.status_code == 302
    assert run.config["steps"] == 9 and run.config["temperature"] == 0.7
    assert run.config["max_new_tokens"] == 48  # the YAML left it out: RunConfig's default, not the field's 32


def test_yaml_outside_the_schema_is_refused_with_its_line_and_key(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(
        "/runs/new/",
        {
            **LAUNCH_FIELDS,
            "dataset_version": version.pk,
            "config_yaml": "steps: 10\nlr: 0.001\n\ngroup_size: 1\n",
        },
    )

    content = response.content.decode()
    assert "config line 4, &#x27;group_size&#x27;: must be an integer ≥ 2" in content
    assert '<details id="advanced-config" open' in content
    assert Run.objects.count() == 0


def test_invalid_yaml_shows_the_parsers_line_and_column(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(
        "/runs/new/", {**LAUNCH_FIELDS, "dataset_version": version.pk, "config_yaml": "steps: 5\n  lr: 1\n"}
    )

    assert (
        "config line 2, column 5: invalid YAML: mapping values are not allowed here"
        in response.content.decode()
    )
    assert Run.objects.count() == 0


def test_a_refused_launch_points_at_the_yaml_line_when_the_yaml_was_used(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(
        "/runs/new/",
        {**LAUNCH_FIELDS, "dataset_version": version.pk, "config_yaml": "steps: 5\neval_problems: 3\n"},
    )

    assert "config line 2, &#x27;eval_problems&#x27;: holding out 3 problems" in response.content.decode()
    assert Run.objects.count() == 0


def test_opening_the_yaml_section_fills_it_from_the_fields(logged_in):
    response = logged_in.get(
        "/runs/new/?steps=77&group_size=1&lr=0.0005",
        headers={"HX-Request": "true", "HX-Target": "config-yaml"},
    )

    content = response.content.decode()
    assert "<html" not in content
    assert "steps: 77\n" in content and "lr: 0.0005\n" in content
    assert "group_size: 4\n" in content  # the invalid field shows its default
    assert "disabled" not in content


def test_the_run_page_charts_each_weighted_components_share_stacked(logged_in, user):
    run = RunFactory(created_by=user, config={"reward_correctness": 1.0, "reward_efficiency": 0.5})

    response = logged_in.get(f"/runs/{run.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-keys="reward/correctness/share,reward/efficiency/share"' in html
    assert 'data-labels="correctness,efficiency"' in html and 'data-stacked="true"' in html
    assert "data-keys" not in logged_in.get(f"/runs/{RunFactory(created_by=user).pk}/").content.decode()
