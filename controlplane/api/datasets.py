"""Datasets, their versions and problems: what the datasets pages list, and the upload form's upload.

`POST /datasets` takes the upload form's multipart fields and goes through the same form (its size
limit and messages) and the same service (its parsing, its errors with line and field, the same
verification started on commit), so a script's upload and a browser's are the same upload.
"""

import hashlib
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja import File, Form, Router, Schema, Status, UploadedFile

from controlplane.accounts.models import Team
from controlplane.api.errors import ApiError
from controlplane.api.idempotency import idempotent, request_fingerprint
from controlplane.api.lookups import caller, page_url, team_of_caller
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from datasets_app import selectors
from datasets_app.forms import DatasetUploadForm
from datasets_app.models import Dataset, DatasetVersion, Problem, ProblemKind, ProblemStatus
from datasets_app.services import DatasetImportError, dataset_import

router = Router(tags=["datasets"])

# --- answers ---------------------------------------------------------------------------------------


class Ref(Schema):
    id: int
    name: str


class Version(Schema):
    id: int
    dataset: Ref
    team: Ref | None  # None: the shared area
    version: int
    # "verifying": problems are pending; "checked": every problem has a verdict; "not_queued": the
    # broker did not take the verification (verify_error says why; the version page's "Verify again").
    status: str
    problems: int
    counts: dict[str, int]  # problems per verification status, every status
    checked: int  # problems with a verdict (not pending)
    verify_error: str
    content_hash: str
    format: str
    source_filename: str
    created_by: str
    created_at: str
    url: str


class VersionDetail(Version):
    duplicates: int
    near_duplicates: int
    contaminated: int  # problems overlapping HumanEval
    # The diversity measures of its sample ({} until measured) and what they flag (docs/datasets.md,
    # "Diversity and collapse").
    diversity: dict[str, Any]
    diversity_flags: list[dict[str, Any]]


class DatasetOut(Schema):
    id: int
    name: str
    team: Ref | None
    shared: bool
    versions: int
    latest_version: Version | None
    created_at: str
    url: str


class ProblemOut(Schema):
    id: int
    index: int
    task_id: str
    status: str
    reason: str  # why it is not verified: its error class and exception ("" when verified or pending)
    kind: str  # "function", "program" (stdin/stdout; its entry_point is "") or "repo" (a repository task)
    entry_point: str
    difficulty: str
    tags: list[str]
    duplicate_of: str
    near_duplicate_of: str
    contaminated_with: str
    # Repository tasks only (None for other kinds): the test ids that must go from failing to passing,
    # those that must keep passing, and the runner (unittest | pytest).
    fail_to_pass: list[str] | None = None
    pass_to_pass: list[str] | None = None
    runner: str | None = None


class UploadError(Schema):
    error: str
    field: str | None
    errors: list[dict[str, Any]] | None = None


def _ref(obj: Dataset | Team | None) -> dict[str, Any] | None:
    return None if obj is None else {"id": obj.pk, "name": obj.name}


def _status(counts: dict[str, int], verify_error: str) -> str:
    if verify_error:
        return "not_queued"
    return "verifying" if counts.get(ProblemStatus.PENDING, 0) else "checked"


def version_item(request: HttpRequest, version: DatasetVersion, counts: dict[str, int]) -> dict[str, Any]:
    total = sum(counts.values())
    return {
        "id": version.pk,
        "dataset": _ref(version.dataset),
        "team": _ref(version.dataset.team),
        "version": version.number,
        "status": _status(counts, version.verify_error),
        "problems": version.problem_count,
        "counts": counts,
        "checked": total - counts.get(ProblemStatus.PENDING, 0),
        "verify_error": version.verify_error,
        "content_hash": version.content_hash,
        "format": version.format,
        "source_filename": version.source_filename,
        "created_by": version.created_by.username,
        "created_at": version.created_at.isoformat(),
        "url": page_url(request, "datasets:version", version.pk),
    }


def _versions(request: HttpRequest, versions: list[DatasetVersion]) -> list[dict[str, Any]]:
    counts = selectors.version_status_counts(version_ids=[v.pk for v in versions])
    return [version_item(request, v, counts[v.pk]) for v in versions]


def _datasets(request: HttpRequest, datasets: list[Dataset]) -> list[dict[str, Any]]:
    latest = {d.pk: max(d.versions.all(), key=lambda v: v.number, default=None) for d in datasets}
    answers = {v["id"]: v for v in _versions(request, [v for v in latest.values() if v is not None])}
    return [
        {
            "id": d.pk,
            "name": d.name,
            "team": _ref(d.team),
            "shared": d.is_shared,
            "versions": len(d.versions.all()),
            "latest_version": answers[v.pk] if (v := latest[d.pk]) is not None else None,
            "created_at": d.created_at.isoformat(),
            "url": page_url(request, "datasets:detail", d.pk),
        }
        for d in datasets
    ]


def _page_of(request: HttpRequest, items: Any, page: int, per_page: int, answer: Any) -> dict[str, Any]:
    """A page whose items are answered together (one query for their counts, not one per row)."""
    result = paged(items, page=page, per_page=per_page)
    result["items"] = answer(request, list(result["items"]))
    return result


def _problem_item(problem: Problem) -> dict[str, Any]:
    reason = problem.error_class + (f" ({problem.exception_type})" if problem.exception_type else "")
    return {
        "id": problem.pk,
        "index": problem.index,
        "task_id": problem.task_id,
        "status": problem.status,
        "reason": reason,
        "kind": problem.kind,
        "entry_point": problem.entry_point,
        "difficulty": problem.difficulty,
        "tags": [str(t) for t in problem.tags] if isinstance(problem.tags, list) else [],
        "duplicate_of": problem.duplicate_of,
        "near_duplicate_of": problem.near_duplicate_of,
        "contaminated_with": problem.contaminated_with,
        **(
            {
                "fail_to_pass": [str(t) for t in problem.fail_to_pass],
                "pass_to_pass": [str(t) for t in problem.pass_to_pass],
                "runner": problem.runner or "unittest",
            }
            if problem.kind == ProblemKind.REPO
            else {}
        ),
    }


# --- reads -----------------------------------------------------------------------------------------


@router.get("/datasets", response=Page[DatasetOut], url_name="datasets-list", summary="Datasets you read")
def dataset_list(request: HttpRequest, page: int = 1, per_page: int = PER_PAGE_DEFAULT) -> dict[str, Any]:
    """Your teams' datasets and the shared ones, as the datasets page lists them (shared first)."""
    datasets = selectors.dataset_list_for_user(user=caller(request)).prefetch_related("versions__created_by")
    return _page_of(request, datasets, page, per_page, _datasets)


@router.get("/datasets/{dataset_id}", response=DatasetOut, url_name="dataset-detail", summary="A dataset")
def dataset_detail(request: HttpRequest, dataset_id: int) -> dict[str, Any]:
    dataset = selectors.dataset_get_for_user(user=caller(request), dataset_id=dataset_id)
    dataset = (
        Dataset.objects.prefetch_related("versions__created_by").select_related("team").get(pk=dataset.pk)
    )
    return _datasets(request, [dataset])[0]


@router.get(
    "/datasets/{dataset_id}/versions",
    response=Page[Version],
    url_name="dataset-versions",
    summary="A dataset's versions, newest first",
)
def dataset_versions(
    request: HttpRequest, dataset_id: int, page: int = 1, per_page: int = PER_PAGE_DEFAULT
) -> dict[str, Any]:
    dataset = selectors.dataset_get_for_user(user=caller(request), dataset_id=dataset_id)
    versions = dataset.versions.select_related("dataset__team", "created_by").order_by("-number")
    return _page_of(request, versions, page, per_page, _versions)


@router.get(
    "/dataset-versions/{version_id}",
    response=VersionDetail,
    url_name="dataset-version-detail",
    summary="A version, with its verification progress",
)
def dataset_version_detail(request: HttpRequest, version_id: int) -> dict[str, Any]:
    """Poll it after an upload: `status` turns from "verifying" to "checked" as the version page's."""
    version = selectors.dataset_version_get_for_user(user=caller(request), version_id=version_id)
    summary = selectors.version_summary(version=version, max_tags=0)
    return {
        **version_item(request, version, summary.by_status),
        "duplicates": summary.duplicates,
        "near_duplicates": summary.near_duplicates,
        "contaminated": summary.contaminated,
        "diversity": version.diversity,
        "diversity_flags": version.diversity_flags,
    }


@router.get(
    "/dataset-versions/{version_id}/problems",
    response=Page[ProblemOut],
    url_name="dataset-version-problems",
    summary="A version's problems, filtered as on its page",
)
def dataset_version_problems(
    request: HttpRequest,
    version_id: int,
    status: str = "",
    q: str = "",
    kind: str = "",
    page: int = 1,
    per_page: int = PER_PAGE_DEFAULT,
) -> dict[str, Any]:
    """`status`: one of pending, verified, failing, flaky, weak_tests; `kind`: one of function, program,
    repo; `q`: text in the task id, prompt or solution."""
    if status and status not in ProblemStatus.values:
        raise ApiError(
            400, f"status: one of {', '.join(ProblemStatus.values)}, not {status!r}", field="status"
        )
    if kind and kind not in ProblemKind.values:
        raise ApiError(400, f"kind: one of {', '.join(ProblemKind.values)}, not {kind!r}", field="kind")
    if len(q) > 200:
        raise ApiError(400, "q: at most 200 characters", field="q")
    version = selectors.dataset_version_get_for_user(user=caller(request), version_id=version_id)
    problems = selectors.problem_search(version=version, text=q, status=status, kind=kind)
    return paged(problems, page=page, per_page=per_page, to_item=_problem_item)


# --- the upload ------------------------------------------------------------------------------------

UPLOAD_FIELDS = {"name", "team", "shared"}


def _unknown_fields(request: HttpRequest) -> None:
    unknown = sorted((set(request.POST) - UPLOAD_FIELDS) | (set(request.FILES) - {"file"}))
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field", field=unknown[0])


def _file_hash(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _form_error(form: DatasetUploadForm) -> ApiError:
    if form.has_error("file", code="too_large"):
        return ApiError(413, f"file: {form.errors['file'][0]}", field="file")
    field, messages = next(iter(form.errors.items()))
    return ApiError(400, f"{field}: {messages[0]}", field=field)


def _upload(
    request: HttpRequest, user: User, upload: UploadedFile, name: str, team: Team | None, shared: bool
) -> tuple[int, dict[str, Any]]:
    form = DatasetUploadForm(
        {"name": name, "team": team.pk if team else ""},
        {"file": upload},
        teams=Team.objects.filter(pk=team.pk) if team else Team.objects.none(),
    )
    if not form.is_valid():
        raise _form_error(form)
    try:
        outcome = dataset_import(
            user=user,
            name=form.cleaned_data["name"],
            fileobj=upload,
            filename=upload.name or "",
            team=team,
            shared=shared,
        )
    except DatasetImportError as exc:
        first = exc.errors[0]
        raise ApiError(
            400,
            "; ".join(str(e) for e in exc.errors[:5])
            + (f" (and {len(exc.errors) - 5} more)" if len(exc.errors) > 5 else ""),
            field=first.field or "file",
            errors=[{"line": e.line, "field": e.field, "message": e.message} for e in exc.errors],
        ) from None
    version = DatasetVersion.objects.select_related("dataset__team", "created_by").get(pk=outcome.version.pk)
    counts = selectors.version_status_counts(version_ids=[version.pk])[version.pk]
    # 201: a new version, verifying; 200: identical content is that existing version (as the page says).
    return (201 if outcome.created else 200), version_item(request, version, counts)


@router.post(
    "/datasets",
    response={200: Version, 201: Version, 400: UploadError, 413: UploadError},
    url_name="datasets-upload",
    summary="Upload a JSONL(.gz) file as a dataset's new version",
)
def dataset_upload(
    request: HttpRequest,
    file: File[UploadedFile],
    name: Form[str],
    team: Form[int | None] = None,
    shared: Form[bool] = False,
) -> Status[dict[str, Any]]:
    """Multipart fields as the upload form's: `file` (HumanEval, MBPP, Triad, a program format's or
    repository tasks' JSONL, gzipped or not),
    `name` (a new name creates the dataset, an existing one adds a version), `team` (id; default: your
    first team where you are a member), `shared` (site admins). Verification starts as after a browser
    upload; poll `GET /dataset-versions/{id}`. With an `Idempotency-Key`, a retry answers the first
    upload's answer and imports nothing again."""
    _unknown_fields(request)
    user = caller(request)
    owner = team_of_caller(user=user, team_id=team)
    fingerprint = request_fingerprint(name, str(team), str(shared), file.name or "", _file_hash(file))
    status, body = idempotent(
        request,
        operation="datasets.upload",
        fingerprint=fingerprint,
        create=lambda: _upload(request, user, file, name, owner, shared),
    )
    return Status(status, body)
