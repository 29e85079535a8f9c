"""Organizing runs: rename, tags, a note, archive and delete (docs/runs.md, "Organizing runs").

Every change is one transaction; renames, archiving and deletes are audited. Nothing here checks roles:
the views and the API fetch the run with run_get_for_user(at_least=...) first (members organize, team
admins delete)."""

import re
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from controlplane.accounts.models import AuditAction
from controlplane.accounts.services import audit_record
from runs.models import Run, RunTag
from runs.note import NOTE_MAX

NAME_MAX = Run._meta.get_field("name").max_length or 200
TAG_MAX_LENGTH = RunTag._meta.get_field("name").max_length or 64
TAGS_PER_RUN = 20
# Lowercase slugs, with the separators people use to group tags ("lr:3e-6", "ablation/kl", "v1.2").
TAG_RE = re.compile(r"[a-z0-9][a-z0-9._:/-]*")


class OrganizeError(ValueError):
    """Refused: the message names the field; nothing was changed."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def tag_clean(name: str) -> str:
    """A tag as stored: trimmed, lowercase, inner spaces as dashes; else OrganizeError naming `tags`."""
    tag = re.sub(r"\s+", "-", str(name).strip().lower())
    if not tag:
        raise OrganizeError("tags: a tag cannot be empty", field="tags")
    if len(tag) > TAG_MAX_LENGTH:
        raise OrganizeError(f"tags: {tag[:20]!r}… is longer than {TAG_MAX_LENGTH} characters", field="tags")
    if not TAG_RE.fullmatch(tag):
        raise OrganizeError(
            f"tags: {tag!r} may hold only a-z, 0-9 and . _ : / - (starting with a letter or digit)",
            field="tags",
        )
    return tag


def _audit(
    run: Run, user: User | None, action: AuditAction, before: dict[str, Any], after: dict[str, Any] | None
) -> None:
    audit_record(
        actor=user,
        action=action,
        target_type="run",
        target_id=run.pk,
        target=f"run #{run.pk} {run.name}",
        team_id=run.team_id,
        before=before,
        after=after,
    )


def run_rename(*, run: Run, user: User | None, name: str) -> Run:
    new = str(name).strip()
    if not new:
        raise OrganizeError("name: a run needs a name", field="name")
    if len(new) > NAME_MAX:
        raise OrganizeError(f"name: at most {NAME_MAX} characters", field="name")
    old = run.name
    if new == old:
        return run
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).update(name=new)
        run.name = new
        _audit(run, user, AuditAction.RUN_RENAME, {"name": old}, {"name": new})
    return run


def run_tags_set(*, run: Run, tags: Iterable[str]) -> list[str]:
    """The run's tags become exactly `tags` (cleaned, duplicates dropped); its tags afterwards."""
    cleaned = list(dict.fromkeys(tag_clean(t) for t in tags))
    if len(cleaned) > TAGS_PER_RUN:
        raise OrganizeError(f"tags: at most {TAGS_PER_RUN} tags a run", field="tags")
    with transaction.atomic():
        RunTag.objects.filter(run=run).exclude(name__in=cleaned).delete()
        have = set(RunTag.objects.filter(run=run).values_list("name", flat=True))
        RunTag.objects.bulk_create([RunTag(run=run, name=t) for t in cleaned if t not in have])
    return sorted(cleaned)


def run_tags_add(*, run: Run, tags: Iterable[str]) -> list[str]:
    """Add tags (a comma-separated entry is several); the run's tags afterwards."""
    with transaction.atomic():
        # Two people adding at once: the second reads the first's tags before counting to the limit.
        Run.objects.select_for_update().filter(pk=run.pk).values_list("pk", flat=True).first()
        current = list(RunTag.objects.filter(run=run).values_list("name", flat=True))
        return run_tags_set(run=run, tags=[*current, *tags])


def run_tag_remove(*, run: Run, tag: str) -> list[str]:
    RunTag.objects.filter(run=run, name=str(tag).strip().lower()).delete()
    return list(RunTag.objects.filter(run=run).values_list("name", flat=True))


def tags_split(text: str) -> list[str]:
    """ "a, b c" → ["a", "b c"]: what a person types into the tag box (commas separate tags)."""
    return [part for part in (p.strip() for p in str(text).split(",")) if part]


def run_note_set(*, run: Run, note: str) -> Run:
    text = str(note).replace("\r\n", "\n")
    if len(text) > NOTE_MAX:
        raise OrganizeError(f"note: at most {NOTE_MAX} characters", field="note")
    Run.objects.filter(pk=run.pk).update(note=text)
    run.note = text
    return run


def run_archive(*, run: Run, user: User | None, archived: bool) -> bool:
    """Archive (or bring back) a run; False when it already was (a repeated click changes nothing)."""
    with transaction.atomic():
        if archived:
            moved = Run.objects.filter(pk=run.pk, archived_at__isnull=True).update(archived_at=timezone.now())
        else:
            moved = Run.objects.filter(pk=run.pk, archived_at__isnull=False).update(archived_at=None)
        if moved:
            action = AuditAction.RUN_ARCHIVE if archived else AuditAction.RUN_UNARCHIVE
            _audit(run, user, action, {"archived": not archived}, {"archived": archived})
        run.refresh_from_db(fields=["archived_at"])
    return bool(moved)


def run_delete(*, run: Run, user: User | None, checkpoints: bool = False) -> bool:
    """Delete a run that has ended, with everything recorded of it (points, generations, logs, costs, tags:
    CASCADE). Its checkpoints stay on the pool's storage unless `checkpoints`: then a node of its pool
    removes them once the delete has committed (runs.checkpoints_delete; models exported from it are
    kept). Refused, changing nothing, while it is active or while something still needs it (an
    evaluation of it). False when the checkpoints were asked for and the broker did not take the task
    (the run is deleted all the same; its checkpoints stay)."""
    if run.is_active:
        raise OrganizeError(
            f"run #{run.pk} is {run.get_status_display()}: cancel it first, then delete it", field="run"
        )
    if jobs := list(run.eval_jobs.values_list("pk", flat=True)[:5]):
        named = ", ".join(f"#{pk}" for pk in jobs)
        raise OrganizeError(
            f"run #{run.pk} is evaluated by evaluation {named}: delete the evaluation first", field="run"
        )
    with transaction.atomic():
        # Only an ended run: a run started since the page was read is not deleted under its launcher.
        locked = Run.objects.select_for_update().filter(pk=run.pk).first()
        if locked is None:  # deleted meanwhile (a second click)
            return True
        if locked.is_active:
            raise OrganizeError(
                f"run #{run.pk} is {locked.get_status_display()}: cancel it first", field="run"
            )
        after = {"checkpoints": f"deleted on pool {locked.pool}" if checkpoints else "kept"}
        _audit(run, user, AuditAction.RUN_DELETE, {"status": locked.status, "name": locked.name}, after)
        try:
            locked.delete()
        except ProtectedError as exc:
            names = sorted({str(type(obj)._meta.verbose_name) for obj in exc.protected_objects})
            raise OrganizeError(
                f"run #{run.pk} is still needed by: {', '.join(str(n) for n in names)}", field="run"
            ) from None
    if checkpoints:
        return _checkpoints_delete_send(run_id=run.pk, pool=run.pool)
    return True


def _checkpoints_delete_send(*, run_id: int, pool: str) -> bool:
    """Hand the deletion of a deleted run's checkpoints to its pool (after the commit: a rolled-back delete
    keeps them). A broker that is down: False, and the files stay."""
    from controlplane.celery import BROKER_ERRORS
    from runs.tasks import run_checkpoints_delete_task

    try:
        run_checkpoints_delete_task.apply_async(args=[run_id], queue=f"gpu.{pool}")
    except BROKER_ERRORS:
        return False
    return True
