"""Django's admin (/admin/): every model of Triad's apps is registered and its pages render for a
superuser; records only Triad writes are read-only even for them; secrets never reach a page; a
membership changed in the admin goes through the same service as the team page (audited)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from controlplane.accounts.models import AuditAction, AuditEntry, Membership, Role
from controlplane.admin import EstimatedCountPaginator
from datasets_app.models import GenerationJob
from runs.models import IngestedEvent, LogLine, MetricPoint, RunClaim
from runs.spend.models import CostEntry, GpuPrice, RunCost
from tests.datasets_app.genjobs_world import world_generation_job
from tests.factories import MetricPointFactory
from tests.runs.sweeps.world import world_sweep

OUR_APPS = ("controlplane", "datasets_app", "runs")


def _our_models():
    return [m for m in apps.get_models() if m._meta.app_config.name.startswith(OUR_APPS)]


def _admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_model_has_an_admin_whose_pages_render_for_a_superuser(client, world):
    # A few rows more than the role world has, so that most change pages render a real row.
    world_sweep(world)
    world_generation_job(world)
    run, now = world.run, timezone.now()
    MetricPointFactory(run=run, key="reward/mean", step=1, value=0.5)
    LogLine.objects.create(run=run, source="trainer", level="info", message="<b>step 1</b>", time=now)
    IngestedEvent.objects.create(run=run, attempt=1, source="trainer", seq=1, type="metric")
    RunClaim.objects.create(
        run=run, attempt=1, node="n1", key="claim-key-secret", node_rank=0, claimed_at=now, last_seen_at=now
    )
    RunCost.objects.create(run=run, accrued_until=now, usd=1, gpu_hours=0.5, gpus=1)
    CostEntry.objects.create(run=run, day=now.date(), usd=1, gpu_hours=0.5)
    GpuPrice.objects.get_or_create(pool="cpu", defaults={"gpu_type": "cpu", "usd_per_gpu_hour": 0})
    _login_site_admin(client, world)
    failures, rendered_rows = [], 0

    for model in _our_models():
        assert admin.site.is_registered(model), f"{model._meta.label} has no admin"
        pages = [_admin_url(model, "changelist")]
        if admin.site.get_model_admin(model).has_add_permission(_request(world)):
            pages.append(_admin_url(model, "add"))
        row = model._default_manager.first()
        if row is not None:
            rendered_rows += 1
            pages.append(_admin_url(model, "change", row.pk))
        for url in pages:
            status = client.get(url).status_code
            if status != 200:
                failures.append(f"{url}: {status}")

    assert failures == []
    assert rendered_rows >= 28  # of the 44 models; the rest render their empty changelists


def _login_site_admin(client, world):
    """The world's superuser, with the staff flag the admin asks of everyone (createsuperuser sets it)."""
    root = world.users["superuser"]
    root.is_staff = True
    root.save(update_fields=["is_staff"])
    client.force_login(root)


def _request(world):
    class Request:
        user = world.users["superuser"]

    return Request()


def test_records_only_triad_writes_are_read_only_even_for_a_superuser(client, world):
    _login_site_admin(client, world)
    entry = AuditEntry.objects.filter(action=AuditAction.TOKEN_CREATE).get()

    add = client.get(_admin_url(AuditEntry, "add"))
    post = client.post(_admin_url(AuditEntry, "change", entry.pk), {"action": "run.cancel"})
    delete = client.post(_admin_url(AuditEntry, "delete", entry.pk), {"post": "yes"})
    run_delete = client.post(_admin_url(type(world.run), "delete", world.run.pk), {"post": "yes"})

    assert (add.status_code, post.status_code, delete.status_code, run_delete.status_code) == (
        403,
        403,
        403,
        403,
    )
    assert AuditEntry.objects.get(pk=entry.pk).action == AuditAction.TOKEN_CREATE
    assert type(world.run).objects.filter(pk=world.run.pk).exists()


def test_secrets_never_reach_an_admin_page(client, world):
    job = GenerationJob.objects.get(pk=world_generation_job(world))
    GenerationJob.objects.filter(pk=job.pk).update(api_key_encrypted="gAAAA-encrypted-key")
    world.alert_rule.webhook_secret = "whsec-do-not-show"
    world.alert_rule.save()
    _login_site_admin(client, world)

    pages = [
        client.get(_admin_url(GenerationJob, "change", job.pk)),
        client.get(_admin_url(type(world.alert_rule), "change", world.alert_rule.pk)),
        client.get(_admin_url(type(world.token), "change", world.token.pk)),
        client.get(_admin_url(type(world.token), "changelist")),
        client.get(_admin_url(type(world.run), "change", world.run.pk)),
    ]

    text = "".join(page.content.decode() for page in pages)
    assert all(page.status_code == 200 for page in pages)
    for secret in ("gAAAA-encrypted-key", "whsec-do-not-show", world.token.token_hash, world.run.token_hash):
        assert secret not in text


def test_a_team_admin_who_is_not_staff_is_sent_to_the_admins_login(client, world):
    client.force_login(world.users["admin"])

    response = client.get(_admin_url(Membership, "changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_membership_set_in_the_admin_is_audited_and_keeps_the_last_admin(client, world):
    _login_site_admin(client, world)
    lou = get_user_model().objects.get(username="lou")
    ada = Membership.objects.get(team=world.alpha, user=world.users["admin"])

    added = client.post(
        _admin_url(Membership, "add"), {"team": world.alpha.pk, "user": lou.pk, "role": Role.VIEWER}
    )
    demoted = client.post(_admin_url(Membership, "change", ada.pk), {"role": Role.MEMBER})
    removed = client.post(_admin_url(Membership, "delete", ada.pk), {"post": "yes"})

    assert added.status_code == 302
    assert Membership.objects.get(team=world.alpha, user=lou).role == Role.VIEWER
    entry = AuditEntry.objects.filter(action=AuditAction.MEMBERSHIP_SET).first()
    assert (entry.actor, entry.target, entry.after) == (
        world.users["superuser"],
        "lou in alpha",
        {"role": "viewer"},
    )
    assert demoted.status_code == 200 and "last admin of alpha" in demoted.content.decode()
    assert removed.status_code == 302
    assert Membership.objects.get(pk=ada.pk).role == Role.ADMIN


@pytest.mark.postgres_only
def test_an_unfiltered_list_of_a_big_table_is_counted_from_postgres_estimate_a_filtered_one_exactly(
    client, world, monkeypatch
):
    """COUNT(*) of hundreds of millions of metric points takes minutes: the admin's unfiltered list
    reads PostgreSQL's estimate (as of the last ANALYZE) instead; a filtered list is counted."""
    MetricPoint.objects.bulk_create(
        MetricPoint(run=world.run, key="reward/mean", step=step, value=0.0, wall_time=timezone.now())
        for step in range(30)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_metricpoint")
    analysed = MetricPoint.objects.count()  # the world's points and these 30
    MetricPointFactory.create_batch(5, run=world.run, key="loss")  # after the estimate was taken
    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_FROM", 10)  # 30 rows count as a big table here
    _login_site_admin(client, world)
    changelist = _admin_url(MetricPoint, "changelist")

    with CaptureQueriesContext(connection) as queries:
        unfiltered = client.get(changelist).content.decode()
    filtered = client.get(changelist, {"run__id__exact": world.run.pk}).content.decode()

    assert f"{analysed} metric points" in unfiltered  # the estimate: the five added since are not in it
    assert not [q["sql"] for q in queries if "COUNT(" in q["sql"] and "runs_metricpoint" in q["sql"]]
    assert f"{MetricPoint.objects.filter(run=world.run).count()} metric points" in filtered
    assert MetricPoint.objects.filter(run=world.run).count() == MetricPoint.objects.count() == analysed + 5
