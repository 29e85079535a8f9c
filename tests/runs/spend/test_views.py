import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from controlplane.accounts.models import AuditAction, AuditEntry, Role
from runs.models import RunStatus
from runs.nodes import NodeInfo, node_register
from runs.spend.models import CostEntry, GpuPrice, MonthlyBudget, RunCost
from runs.spend.services import run_cost_accrue
from tests.factories import MetricPointFactory, ProblemFactory, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def staff(client):
    # Budgets: a team's admins; prices: site admins (superusers and staff). This one is both.
    user = UserFactory(username="admin", membership__role=Role.ADMIN, is_staff=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("spend:dashboard", {}),
        ("spend:csv", {}),
        ("spend:prices", {}),
        ("spend:budget-set", {}),
        ("spend:node-price-set", {}),
        ("spend:estimate", {}),
        ("spend:run-cost", {"run_id": 1}),
    ],
)
def test_every_spend_page_needs_a_login(client, name, kwargs):
    response = client.get(reverse(name, kwargs=kwargs))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_prices_and_budgets_are_edited_by_staff_only(logged_in):
    assert logged_in.get(reverse("spend:prices")).status_code == 403
    response = logged_in.post(reverse("spend:budget-set"), {"user": 1, "usd_per_month": "5"})
    assert response.status_code == 403


def test_staff_set_a_pool_price_and_a_users_monthly_budget(staff):
    member = UserFactory(username="bob")

    staff.post(reverse("spend:prices"), {"pool": "h100", "gpu_type": "H100", "usd_per_gpu_hour": "2.5"})
    staff.post(reverse("spend:prices"), {"pool": "h100", "gpu_type": "H100", "usd_per_gpu_hour": "3"})
    staff.post(reverse("spend:budget-set"), {"user": member.pk, "usd_per_month": "250"})

    assert GpuPrice.objects.get(pool="h100").usd_per_gpu_hour == Decimal("3")
    assert MonthlyBudget.objects.get(user=member).usd_per_month == Decimal("250")
    page = staff.get(reverse("spend:prices")).content.decode()
    assert "h100" in page and "bob" in page and "cpu" in page  # the seeded CPU price too


def test_the_dashboard_shows_spend_by_user_and_the_top_runs_with_their_gains(logged_in):
    run = RunFactory(name="big-one", pool="cpu", status=RunStatus.SUCCEEDED)
    CostEntry.objects.create(run=run, day=TODAY, usd=Decimal("12.50"), gpu_hours=5)
    MetricPointFactory(run=run, key="pass_rate", step=0, value=0.25)
    MetricPointFactory(run=run, key="pass_rate", step=9, value=0.50)

    page = logged_in.get(reverse("spend:dashboard")).content.decode()

    assert "$12.50" in page
    assert "big-one" in page
    assert "25.0 pts" in page and "0.5000" in page  # $12.50 / 25 points
    assert 'id="spend-by-day"' in page


def test_the_csv_export_streams_every_ledger_row_of_the_period(logged_in):
    run = RunFactory(name="a,b", pool="cpu")
    CostEntry.objects.create(run=run, day=TODAY, usd=Decimal("1.25"), gpu_hours=0.5)
    CostEntry.objects.create(run=run, day=TODAY - dt.timedelta(days=400), usd=Decimal("9"))

    response = logged_in.get(reverse("spend:csv"), {"days": 30})

    assert response.streaming
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["day", "run_id", "run_name", "user", "team", "pool", "status", "usd", "gpu_hours"]
    assert rows[1:] == [
        [
            TODAY.isoformat(),
            str(run.pk),
            "a,b",
            run.created_by.username,
            run.team.name,
            "cpu",
            "queued",
            "1.250000",
            "0.5",
        ]
    ]


def test_the_launch_form_estimate_follows_its_fields(logged_in, settings):
    settings.TRIAD_SPEND_DEFAULT_STEP_S = 36
    version = ProblemFactory().version

    response = logged_in.get(
        reverse("spend:estimate"), {"dataset_version": version.pk, "steps": 100, "gpus_per_node": 4}
    )

    # 100 steps × 36 s × 4 processes × $0.10 (the seeded cpu price)
    assert "Estimated cost: $0.40" in response.content.decode()


def test_a_refused_launch_shows_the_numbers_on_the_budget_field(logged_in, user, settings):
    settings.TRIAD_SPEND_DEFAULT_STEP_S = 3600
    version = ProblemFactory().version
    MonthlyBudget.objects.create(user=user, usd_per_month=Decimal("1.00"))
    form = {
        "dataset_version": version.pk,
        "steps": 100,
        "group_size": 4,
        "prompts_per_step": 2,
        "lr": 0.001,
        "seed": 0,
        "max_new_tokens": 48,
        "sft_warmup_steps": 0,
        "sft_lr": 0.003,
        "eval_every": 0,
        "eval_problems": 0,
        "gpus_per_node": 0,
        "budget_usd": 0,
    }

    response = logged_in.post(reverse("runs:launch"), form)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Budget (USD): this run is estimated at $20.00" in page
    assert "only $1.00 of your $1.00 monthly budget is left" in page


def test_the_run_page_shows_cost_so_far_projection_and_dollars_per_point(logged_in):
    run = RunFactory(
        status=RunStatus.RUNNING, pool="cpu", config={"steps": 10, "budget_usd": 1.0}, last_step=4
    )
    RunCost.objects.create(
        run=run, accrued_until=dt.datetime.now(dt.UTC), usd=Decimal("0.2"), gpu_hours=2, gpus=2
    )
    for step in range(5):
        MetricPointFactory(run=run, key="time/step_s", step=step, value=360.0)
    MetricPointFactory(run=run, key="pass_rate", step=0, value=0.1)
    MetricPointFactory(run=run, key="pass_rate", step=4, value=0.2)

    page = logged_in.get(reverse("spend:run-cost", kwargs={"run_id": run.pk})).content.decode()

    assert "$0.2000" in page
    assert "20% used" in page
    # 5 steps left × 360 s × 2 processes × $0.10/h = $0.10 more
    assert "projected at 10 steps: $0.3000" in page
    assert "$0.0200 per point of pass rate gained" in page
    detail = logged_in.get(reverse("runs:detail", kwargs={"run_id": run.pk})).content.decode()
    assert reverse("spend:run-cost", kwargs={"run_id": run.pk}) in detail
    assert 'data-key="cost/usd"' in detail


def test_the_launch_form_estimate_follows_the_config_yaml_over_the_fields(logged_in, settings):
    settings.TRIAD_SPEND_DEFAULT_STEP_S = 36
    version = ProblemFactory().version
    fields = {"dataset_version": version.pk, "steps": 100, "gpus_per_node": 4, "budget_usd": 0}

    response = logged_in.get(
        reverse("spend:estimate"),
        {**fields, "config_yaml": "steps: 300\ngpus_per_node: 1\nbudget_usd: 0.05\n"},
    )

    page = response.content.decode()
    # 300 steps × 36 s × 1 process × $0.10 (the fields alone say 100 steps × 4 processes: $0.40)
    assert "Estimated cost: $0.30" in page
    assert "the run will stop at its $0.05 budget" in page
    assert "from the config YAML" in page


def test_a_mistake_in_the_config_yaml_is_shown_instead_of_an_estimate(logged_in):
    version = ProblemFactory().version

    response = logged_in.get(
        reverse("spend:estimate"),
        {"dataset_version": version.pk, "steps": 100, "config_yaml": "steps: 10\n<b>steps</b>: 2\n"},
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "No estimate yet" in page and "Estimated cost" not in page
    assert "config YAML: config line 2: unknown key &#x27;&lt;b&gt;steps&lt;/b&gt;&#x27;" in page
    assert "<b>steps</b>" not in page


def test_admins_set_and_clear_a_nodes_own_price_on_the_prices_page_and_it_is_audited(staff):
    node = node_register(
        info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", gpu_type="A100", gpu_count=8)
    )
    url = reverse("spend:node-price-set")

    staff.post(url, {"node": node.pk, "usd_per_gpu_hour": "4.25"})
    node.refresh_from_db()
    assert node.usd_per_gpu_hour == 4.25
    page = staff.get(reverse("spend:prices")).content.decode()
    assert "gpu@h1" in page and "4.2500" in page

    staff.post(url, {"node": node.pk, "usd_per_gpu_hour": ""})
    node.refresh_from_db()
    assert node.usd_per_gpu_hour is None
    trail = AuditEntry.objects.filter(target_type="node_price").order_by("pk")
    assert [(e.action, e.target, e.before, e.after, e.actor.username) for e in trail] == [
        (AuditAction.PRICE_SET, "node gpu@h1", None, {"usd_per_gpu_hour": 4.25}, "admin"),
        (AuditAction.PRICE_DELETE, "node gpu@h1", {"usd_per_gpu_hour": 4.25}, None, "admin"),
    ]


def test_members_may_not_set_a_nodes_price(logged_in):
    node = node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100"))

    response = logged_in.post(reverse("spend:node-price-set"), {"node": node.pk, "usd_per_gpu_hour": "0"})

    assert response.status_code == 403
    node.refresh_from_db()
    assert node.usd_per_gpu_hour is None


def test_a_learning_stop_says_why_on_the_run_page(logged_in):
    run = RunFactory(
        status=RunStatus.RUNNING,
        pool="cpu",
        config={"steps": 100, "stop_pass_rate_flat_steps": 3},
        started_at=dt.datetime.now(dt.UTC),
        last_step=2,
    )
    for step in range(3):
        MetricPointFactory(run=run, key="pass_rate", step=step, value=0.25)

    assert run_cost_accrue().learning_stopped == [run.pk]

    page = logged_in.get(reverse("runs:detail", kwargs={"run_id": run.pk})).content.decode()
    assert "learning stalled: pass rate flat at 0.25 (within 0.01) for 3 steps" in page
    assert 'data-testid="run-status">Stopped: not learning</span>' in page
    listing = logged_in.get(reverse("runs:list")).content.decode()
    assert ">Stopped: not learning</span>" in listing and ">Budget Stopped</span>" not in listing
    dashboard = logged_in.get(reverse("spend:dashboard")).content.decode()
    assert ">Stopped: not learning</span>" in dashboard


def test_the_estimate_reads_step_times_only_of_dataset_versions_the_user_reads(logged_in, settings):
    settings.TRIAD_SPEND_DEFAULT_STEP_S = 36
    beta = TeamFactory(name="beta")
    theirs = RunFactory(pool="cpu", team=beta, dataset_version__dataset__team=beta)  # on beta's own dataset
    MetricPointFactory(run=theirs, key="time/step_s", step=0, value=1.0)
    query = {"dataset_version": theirs.dataset_version_id, "steps": 100, "gpus_per_node": 4}

    page = logged_in.get(reverse("spend:estimate"), query).content.decode()

    assert "this dataset version" not in page
