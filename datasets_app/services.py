"""Every state change of datasets: import, verification verdicts, duplicate and contamination flags."""

from __future__ import annotations

import gzip
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from controlplane.accounts.models import Role, Team
from controlplane.accounts.selectors import is_site_admin
from controlplane.accounts.services import require_role, team_default
from datasets_app import conf
from datasets_app.models import Dataset, DatasetVersion, Problem, ProblemKind, ProblemStatus, RepoSnapshot
from datasets_app.parsing import (
    REPO_MAX_LINE_BYTES,
    LineError,
    Parser,
)
from datasets_app.problem_rows import problem_row, snapshot_id
from datasets_app.selectors import dataset_get_for_user, dataset_upload_teams

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
INSERT_BATCH = 2000


class VerifyNotQueuedError(Exception):
    """The broker did not take a version's verification tasks; the reason is on the version too."""


class DatasetMoveError(ValueError):
    pass


class DatasetInUseError(Exception):
    """Runs pinned a version of the dataset: it stays (a run's record must keep its data)."""


class DatasetImportError(Exception):
    def __init__(self, errors: list[LineError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors[:5]))


@dataclass(frozen=True)
class ImportOutcome:
    version: DatasetVersion
    created: bool


class _TooLarge(Exception):
    pass


class _Reuse(Exception):
    def __init__(self, version: DatasetVersion):
        self.version = version


def _lines(fileobj: IO[bytes], limit: int) -> Iterator[bytes]:
    """Lines of a plain or gzipped file, refusing more than `limit` decompressed bytes (bomb guard).

    A line is read at most REPO_MAX_LINE_BYTES + 1 at a time (the parser holds each format to its own
    limit); the rest of an over-long line is skipped.
    """
    head = fileobj.read(2)
    fileobj.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=fileobj) if head == GZIP_MAGIC else fileobj  # type: ignore[assignment]
    total = 0
    while line := stream.readline(REPO_MAX_LINE_BYTES + 1):
        total += len(line)
        if total > limit:
            raise _TooLarge
        if len(line) > REPO_MAX_LINE_BYTES and not line.endswith(b"\n"):
            while rest := stream.readline(1 << 16):
                total += len(rest)
                if total > limit:
                    raise _TooLarge
                if rest.endswith(b"\n"):
                    break
        yield line


def dataset_import_team(*, user: User, team: Team | None = None, shared: bool = False) -> Team | None:
    """The team an upload goes to: the one asked for if the user is a member or admin of it, else their
    first such team by name (a superuser in none: the default team); None for the shared area, which
    only site admins write. Anything else is PermissionDenied: uploading runs code on the verification
    workers and adds versions others may train on."""
    if shared:
        if not is_site_admin(user=user):
            raise PermissionDenied("only site admins upload to the shared area")
        return None
    if team is not None:
        require_role(user=user, team_id=team.pk, at_least=Role.MEMBER, doing="uploading a dataset")
        return team
    first = dataset_upload_teams(user=user).first()
    if first is not None:
        return first
    if user.is_superuser:
        return team_default()
    raise PermissionDenied(
        "uploading a dataset needs the member role in a team: ask a team admin to add you as a member"
    )


def dataset_import(
    *,
    user: User,
    name: str,
    fileobj: IO[bytes],
    filename: str = "",
    team: Team | None = None,
    shared: bool = False,
) -> ImportOutcome:
    """Stream a JSONL(.gz) file of problems (any format of parsing.py, repository tasks included) into a
    new immutable version of the team's dataset of that name (see `dataset_import_team` for which team,
    and who may).

    Problems are inserted in batches inside one transaction while the file is read, so memory stays
    bounded; any bad line rolls it all back and the file is refused whole, with every error. Identical
    content reuses the existing version. On commit, verification and analysis are enqueued; if the
    broker refuses them, the version is kept and its `verify_error` says so (docs/datasets.md).
    """
    owner = dataset_import_team(user=user, team=team, shared=shared)
    name = name.strip()
    if not name:
        raise DatasetImportError([LineError(0, "name", "a dataset name is required")])
    limit = settings.TRIAD_MAX_UPLOAD_BYTES
    parser = Parser()
    try:
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(team=owner, name=name, defaults={"created_by": user})
            dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
            last = dataset.versions.order_by("-number").values_list("number", flat=True).first() or 0
            version = DatasetVersion.objects.create(
                dataset=dataset,
                number=last + 1,
                content_hash=f"importing-{uuid.uuid4().hex}",
                problem_count=0,
                source_filename=filename[:255],
                created_by=user,
            )
            seen: dict[str, str] = {}  # normalised prompt or solution hash -> first task_id
            snapshots: dict[str, int] = {}  # sha256 -> RepoSnapshot pk
            batch: list[Problem] = []
            for index, parsed in enumerate(parser.parse(_lines(fileobj, limit))):
                row = problem_row(version, index, parsed, snapshot_id=snapshot_id(parsed, snapshots))
                row.duplicate_of = seen.get(row.prompt_hash) or seen.get(row.solution_hash, "")
                seen.setdefault(row.prompt_hash, parsed.task_id)
                seen.setdefault(row.solution_hash, parsed.task_id)
                batch.append(row)
                if len(batch) >= INSERT_BATCH:
                    Problem.objects.bulk_create(batch)
                    batch.clear()
            if parser.errors:
                raise DatasetImportError(parser.errors)
            Problem.objects.bulk_create(batch)
            existing = dataset.versions.filter(content_hash=parser.content_hash).first()
            if existing is not None:
                raise _Reuse(existing)
            version.content_hash = parser.content_hash
            version.problem_count = parser.count
            version.format = parser.format
            version.save(update_fields=["content_hash", "problem_count", "format"])
            dataset_version_verify(version_id=version.pk)
            transaction.on_commit(lambda: _enqueue_analysis(version.pk))
    except _Reuse as reuse:
        return ImportOutcome(version=reuse.version, created=False)
    except _TooLarge:
        raise DatasetImportError(
            [
                LineError(
                    0, "", f"file is larger than the {limit // (1024 * 1024)} MiB limit once decompressed"
                )
            ]
        ) from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetImportError([LineError(0, "", f"cannot decompress: {exc}")]) from None
    version.refresh_from_db(fields=["verify_enqueued_at", "verify_error"])  # as the enqueue left them
    return ImportOutcome(version=version, created=True)


def dataset_move(*, dataset_id: int, team: Team | None) -> Dataset:
    """Give a dataset to another team (None: the shared area). An operator's act (`manage.py
    move_dataset`): its versions, hashes and problems stay as they are, and runs that pinned a version
    keep it, whatever their team; new launches need the new owner (or shared)."""
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.team_id == (team.pk if team else None):
            return dataset
        clash = Dataset.objects.filter(team=team, name=dataset.name).exists()
        where = f"team {team.name}" if team else "the shared area"
        if clash:
            raise DatasetMoveError(f"{where} has a dataset named {dataset.name!r} already: rename one first")
        try:
            with transaction.atomic():
                Dataset.objects.filter(pk=dataset_id).update(team=team)
        except IntegrityError:  # the same name arrived meanwhile
            raise DatasetMoveError(f"{where} has a dataset named {dataset.name!r} already") from None
    dataset.refresh_from_db()
    return dataset


def dataset_delete(*, user: User, dataset_id: int) -> str:
    """Delete a dataset with its versions and problems: its team's admins (site admins for a shared one).
    Refused while any run pinned one of its versions. Returns its name."""
    dataset = dataset_get_for_user(user=user, dataset_id=dataset_id, at_least=Role.ADMIN, doing="deleting")
    try:
        with transaction.atomic():
            snapshot_ids = set(
                Problem.objects.filter(version__dataset=dataset, snapshot__isnull=False).values_list(
                    "snapshot_id", flat=True
                )
            )
            for version in dataset.versions.all():
                version.delete()  # its problems cascade; a run's PROTECT stops it all
            dataset.delete()
            # Repository snapshots no other dataset's task shares go with it.
            RepoSnapshot.objects.filter(pk__in=snapshot_ids, problems__isnull=True).delete()
    except ProtectedError:
        raise DatasetInUseError(f"runs trained on {dataset.name}: it is kept for their record") from None
    return dataset.name


def _enqueue_analysis(version_id: int) -> None:
    from controlplane.celery import BROKER_ERRORS, broker_unreachable
    from datasets_app.tasks import dataset_version_analyse_task

    try:
        dataset_version_analyse_task.apply_async(args=(version_id,), queue=settings.TRIAD_CONTROL_QUEUE)
    except BROKER_ERRORS as exc:
        # Flags only, nothing waits on them; "Verify again" queues the analysis too.
        logger.warning("version %s: analysis not queued: %s", version_id, broker_unreachable(exc))


def dataset_version_verify(*, version_id: int) -> int:
    """Fan out verification of a version's pending problems, in chunks, once the transaction commits."""
    pending = Problem.objects.filter(version_id=version_id, status=ProblemStatus.PENDING).order_by("index")
    ids = list(pending.exclude(kind=ProblemKind.REPO).values_list("pk", flat=True))
    size = conf.verify_chunk_size()
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    # Repository tasks run their tests several times each: smaller chunks, so a task's time stays short.
    repo_ids = list(pending.filter(kind=ProblemKind.REPO).values_list("pk", flat=True))
    size = conf.repo_verify_chunk_size()
    chunks += [repo_ids[i : i + size] for i in range(0, len(repo_ids), size)]
    ids += repo_ids

    def enqueue() -> None:
        from controlplane.celery import BROKER_ERRORS, broker_unreachable
        from datasets_app.tasks import problem_verify_chunk_task

        try:
            for chunk in chunks:
                # The control queue makes each chunk a payload for the sandbox queue, whose workers
                # hold no database credentials (datasets_app/tasks.py).
                problem_verify_chunk_task.apply_async(
                    args=(version_id, chunk), queue=settings.TRIAD_CONTROL_QUEUE
                )
        except BROKER_ERRORS as exc:
            # Otherwise its problems would stay pending with nothing to verify them, and nobody told.
            reason = (
                f"verification could not be queued: {broker_unreachable(exc)}; verify again when it is back"
            )
            DatasetVersion.objects.filter(pk=version_id).update(verify_error=reason)
            logger.warning("version %s: %s", version_id, reason)
            return
        DatasetVersion.objects.filter(pk=version_id).update(
            verify_enqueued_at=timezone.now(), verify_error=""
        )

    transaction.on_commit(enqueue)  # with no chunks, too: it records that nothing waits on the broker
    return len(ids)


def dataset_version_verify_retry(*, version_id: int) -> int:
    """Queue verification of a version's pending problems (and its analysis) again, typically after
    the broker refused them. Idempotent: verification runs pending problems only. Returns how many were
    queued; raises VerifyNotQueuedError, with the reason also on the version, if the broker refuses again."""
    with transaction.atomic():
        DatasetVersion.objects.filter(pk=version_id).update(verify_enqueued_at=None, verify_error="")
        queued = dataset_version_verify(version_id=version_id)
        transaction.on_commit(lambda: _enqueue_analysis(version_id))
    error = DatasetVersion.objects.values_list("verify_error", flat=True).get(pk=version_id)
    if error:
        raise VerifyNotQueuedError(error)
    return queued
