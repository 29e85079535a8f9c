import pytest
from django.utils import timezone

from controlplane.accounts.models import AuditAction, AuditEntry
from runs import organize
from runs.evals.models import EvalJob
from runs.models import Generation, LogLine, MetricPoint, Run, RunStatus, RunTag
from runs.note import note_html
from runs.selectors import run_list_filtered
from tests.factories import GenerationFactory, MetricPointFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("Ablation", "ablation"), ("  lr:3e-6 ", "lr:3e-6"), ("kl sweep", "kl-sweep"), ("v1.2/b_x", "v1.2/b_x")],
)
def test_tags_are_stored_as_lowercase_slugs(typed, stored):
    assert organize.tag_clean(typed) == stored


@pytest.mark.parametrize("bad", ["", "   ", "-lead", "<b>", "naïve", "a" * 65, "semi;colon"])
def test_a_bad_tag_is_refused_naming_the_field(bad):
    with pytest.raises(organize.OrganizeError) as caught:
        organize.tag_clean(bad)
    assert caught.value.field == "tags"
    assert str(caught.value).startswith("tags:")


def test_tags_add_dedupes_and_remove_takes_one_off():
    run = RunFactory()

    assert organize.run_tags_add(run=run, tags=["b", "A", "a"]) == ["a", "b"]
    assert organize.run_tags_add(run=run, tags=["c"]) == ["a", "b", "c"]
    assert organize.run_tag_remove(run=run, tag="b") == ["a", "c"]


def test_more_than_twenty_tags_are_refused_and_none_is_added():
    run = RunFactory()
    organize.run_tags_set(run=run, tags=[f"t{i}" for i in range(19)])

    with pytest.raises(organize.OrganizeError, match="at most 20"):
        organize.run_tags_add(run=run, tags=["x", "y"])

    assert RunTag.objects.filter(run=run).count() == 19


def test_a_bad_tag_among_good_ones_adds_none_of_them():
    run = RunFactory()

    with pytest.raises(organize.OrganizeError):
        organize.run_tags_add(run=run, tags=["good", "<bad>"])

    assert not RunTag.objects.filter(run=run).exists()


def test_rename_is_audited_with_the_old_and_new_name():
    user = UserFactory()
    run = RunFactory(name="old", created_by=user)

    organize.run_rename(run=run, user=user, name="  new name ")

    run.refresh_from_db()
    assert run.name == "new name"
    entry = AuditEntry.objects.get(action=AuditAction.RUN_RENAME)
    assert (entry.actor, entry.before, entry.after) == (user, {"name": "old"}, {"name": "new name"})


@pytest.mark.parametrize(("name", "message"), [("   ", "needs a name"), ("x" * 201, "at most 200")])
def test_a_bad_name_is_refused(name, message):
    run = RunFactory(name="kept")

    with pytest.raises(organize.OrganizeError, match=message):
        organize.run_rename(run=run, user=None, name=name)

    run.refresh_from_db()
    assert run.name == "kept"


def test_the_note_renders_markdown_without_scripts_or_javascript_links():
    html = note_html(
        "## Why\n**KL** too high: see [the plot](https://example.com/p?a=1&b=2).\n\n"
        "<script>alert('x')</script>\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n"
        "[mail](mailto:a@example.com) [data](data:text/html;base64,PHNjcmlwdD4=)"
    )

    assert "<h2>Why</h2>" in html and "<strong>KL</strong>" in html
    assert '<a href="https://example.com/p?a=1&amp;b=2">the plot</a>' in html
    assert '<a href="mailto:a@example.com">mail</a>' in html
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html  # shown as text
    assert 'href="javascript' not in html and 'href="data' not in html


def test_archived_runs_leave_the_list_and_a_filter_brings_them_back():
    user = UserFactory()
    kept, archived = RunFactory(created_by=user), RunFactory(created_by=user)

    assert organize.run_archive(run=archived, user=user, archived=True)
    assert not organize.run_archive(run=archived, user=user, archived=True)  # a repeat changes nothing

    assert list(run_list_filtered(user=user)) == [kept]
    assert list(run_list_filtered(user=user, archived="only")) == [archived]
    assert set(run_list_filtered(user=user, archived="all")) == {kept, archived}
    assert AuditEntry.objects.filter(action=AuditAction.RUN_ARCHIVE).count() == 1

    organize.run_archive(run=archived, user=user, archived=False)
    assert set(run_list_filtered(user=user)) == {kept, archived}


def test_the_list_filters_by_tag_model_and_creator_and_they_combine():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    a1, a2 = RunFactory(created_by=alice), RunFactory(created_by=alice)
    b1 = RunFactory(created_by=bob)
    for run in (a1, b1):
        organize.run_tags_set(run=run, tags=["kl"])

    assert set(run_list_filtered(user=alice, tag="kl")) == {a1, b1}
    assert set(run_list_filtered(user=alice, created_by_id=alice.pk)) == {a1, a2}
    assert list(run_list_filtered(user=alice, tag="kl", created_by_id=alice.pk)) == [a1]
    assert list(run_list_filtered(user=alice, tag="none-such")) == []


def test_deleting_a_run_takes_its_records_with_it_and_is_audited():
    admin = UserFactory()
    run = RunFactory(status=RunStatus.SUCCEEDED, created_by=admin)
    MetricPointFactory(run=run)
    GenerationFactory(run=run)
    LogLine.objects.create(run=run, source="trainer", message="hi", time=timezone.now())
    organize.run_tags_set(run=run, tags=["gone"])

    organize.run_delete(run=run, user=admin)

    assert not Run.objects.filter(pk=run.pk).exists()
    for model in (MetricPoint, Generation, LogLine, RunTag):
        assert not model.objects.filter(run_id=run.pk).exists()
    entry = AuditEntry.objects.get(action=AuditAction.RUN_DELETE)
    assert entry.target_id == str(run.pk) and entry.before["status"] == RunStatus.SUCCEEDED


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CANCELLING])
def test_an_active_run_is_not_deleted(status):
    run = RunFactory(status=status)

    with pytest.raises(organize.OrganizeError, match="cancel it first"):
        organize.run_delete(run=run, user=None)

    assert Run.objects.filter(pk=run.pk).exists()
    assert not AuditEntry.objects.filter(action=AuditAction.RUN_DELETE).exists()


def test_a_run_an_evaluation_needs_is_not_deleted_and_the_message_names_it():
    run = RunFactory(status=RunStatus.FAILED)
    job = EvalJob.objects.create(
        team=run.team,
        created_by=run.created_by,
        run=run,
        dataset_version=run.dataset_version,
        eval_protocol="codex",
        eval_samples=1,
        eval_k=1,
        max_new_tokens=8,
        pool="cpu",
    )

    with pytest.raises(organize.OrganizeError, match=f"evaluation #{job.pk}"):
        organize.run_delete(run=run, user=None)

    assert Run.objects.filter(pk=run.pk).exists()


def test_deleting_with_its_checkpoints_has_a_node_of_its_pool_remove_them(eager, settings, tmp_path):
    settings.TRIAD_CHECKPOINT_DIR = tmp_path / "ckpt"
    settings.TRIAD_RUNS_DIR = tmp_path / "runs"
    run = RunFactory(status=RunStatus.CANCELLED)
    root = tmp_path / "ckpt" / f"run-{run.pk}"
    (root / "attempt-1").mkdir(parents=True)
    (root / "attempt-1" / "latest").write_text("global_step2")
    (root / "export-step2").mkdir()

    assert organize.run_delete(run=run, user=None, checkpoints=True)

    assert sorted(p.name for p in root.iterdir()) == ["export-step2"]
    assert AuditEntry.objects.get(action=AuditAction.RUN_DELETE).after == {
        "checkpoints": "deleted on pool cpu"
    }


def test_deleting_without_asking_keeps_the_checkpoints(eager, settings, tmp_path):
    settings.TRIAD_CHECKPOINT_DIR = tmp_path
    run = RunFactory(status=RunStatus.SUCCEEDED)
    (tmp_path / f"run-{run.pk}" / "attempt-1").mkdir(parents=True)

    organize.run_delete(run=run, user=None)

    assert (tmp_path / f"run-{run.pk}" / "attempt-1").is_dir()
