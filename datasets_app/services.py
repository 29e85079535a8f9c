import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from datasets_app.models import Dataset, DatasetVersion, Problem
from datasets_app.parsing import LineError, parse_jsonl

GZIP_MAGIC = b"\x1f\x8b"


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


def _lines(fileobj: IO[bytes], limit: int) -> Iterator[bytes]:
    """Lines of a plain or gzipped file, refusing more than `limit` decompressed bytes (bomb guard)."""
    head = fileobj.read(2)
    fileobj.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=fileobj) if head == GZIP_MAGIC else fileobj  # type: ignore[assignment]
    total = 0
    for line in stream:
        total += len(line)
        if total > limit:
            raise _TooLarge
        yield line


def dataset_import(*, user: User, name: str, fileobj: IO[bytes], filename: str = "") -> ImportOutcome:
    """Parse a HumanEval-format JSONL (optionally gzipped) file into a new immutable version.

    Refuses the whole file if any line is bad; re-importing identical content reuses the version.
    """
    name = name.strip()
    if not name:
        raise DatasetImportError([LineError(0, "name", "a dataset name is required")])
    limit = settings.TRIAD_MAX_UPLOAD_BYTES
    try:
        parsed = parse_jsonl(_lines(fileobj, limit))
    except _TooLarge:
        raise DatasetImportError(
            [
                LineError(
                    0, "", f"file is larger than the {limit // (1024 * 1024)} MiB limit once decompressed"
                )
            ]
        ) from None
    except (OSError, EOFError) as exc:
        raise DatasetImportError([LineError(0, "", f"cannot decompress: {exc}")]) from None
    if parsed.errors:
        raise DatasetImportError(parsed.errors)

    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(name=name, defaults={"created_by": user})
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        existing = dataset.versions.filter(content_hash=parsed.content_hash).first()
        if existing is not None:
            return ImportOutcome(version=existing, created=False)
        last = dataset.versions.order_by("-number").values_list("number", flat=True).first() or 0
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=last + 1,
            content_hash=parsed.content_hash,
            problem_count=len(parsed.problems),
            source_filename=filename[:255],
            created_by=user,
        )
        Problem.objects.bulk_create(
            Problem(
                version=version,
                index=index,
                task_id=p.task_id,
                prompt=p.prompt,
                entry_point=p.entry_point,
                solution=p.solution,
                tests=p.tests,
            )
            for index, p in enumerate(parsed.problems)
        )
    return ImportOutcome(version=version, created=True)
