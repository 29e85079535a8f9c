"""Generation jobs (docs/datasets.md, "Generation jobs"): launch one on a dataset, read its progress and
its candidates, cancel it. The parameters are checked by datasets_app/genjob_params.py, as the page's
form checks them; the API key is write-only (answers show its mask)."""

import json
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from controlplane.accounts.models import Role
from controlplane.api.errors import ApiError
from controlplane.api.idempotency import idempotent, request_fingerprint
from controlplane.api.lookups import caller, page_url
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from datasets_app import selectors
from datasets_app.genjobs import GenerationJobError, generation_job_cancel, generation_job_create
from datasets_app.models import CandidateStatus, GenerationCandidate, GenerationJob

router = Router(tags=["generation jobs"])


class GenerateIn(Schema):
    """The teacher (`base_url`, `model`, `api_key`: stored encrypted, never answered) and the job's
    parameters (docs/datasets.md, "Generation jobs", lists each with its default)."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(max_length=500)
    model: str = Field(max_length=200)
    api_key: str = Field("", max_length=2000)
    count: Any = None
    topics: Any = None
    seed_problem_ids: Any = None
    difficulty: Any = None
    kind: Any = None
    temperature: Any = None
    reasoning: Any = None
    n: Any = None
    max_tokens: Any = None
    budget_usd: Any = None
    budget_tokens: Any = None
    usd_per_mtok_in: Any = None
    usd_per_mtok_out: Any = None
    timeout_s: Any = None
    max_requests: Any = None


class Ref(Schema):
    id: int
    name: str


class JobOut(Schema):
    id: int
    dataset: Ref
    status: str
    base_url: str
    model: str
    api_key: str  # the mask ("sk-…abcd"), never the key
    params: dict[str, Any]
    prompt_template: str
    requests: int
    requests_failed: int
    generated: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    tokens_in: int
    tokens_out: int
    usd: float
    percent: int
    eta_s: float | None
    error: str
    parent_version: int | None
    result_version: int | None
    result_url: str | None
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    url: str


class CandidateOut(Schema):
    id: int
    request_index: int
    index: int
    task_id: str
    status: str
    reason: str
    detail: str
    near: str
    mutation_score: float | None
    cpu_ms: int | None
    problem: dict[str, Any] | None
    raw: str


def job_object(request: HttpRequest, job: GenerationJob) -> dict[str, Any]:
    progress = selectors.generation_job_progress(job=job)
    return {
        "id": job.pk,
        "dataset": {"id": job.dataset_id, "name": job.dataset.name},
        "status": job.status,
        "base_url": job.base_url,
        "model": job.model,
        "api_key": job.api_key_mask,
        "params": job.params,
        "prompt_template": job.prompt_template,
        "requests": job.requests,
        "requests_failed": job.requests_failed,
        "generated": job.generated,
        "accepted": job.accepted,
        "rejected": progress.rejected_total,
        "rejected_by_reason": dict(progress.rejected),
        "tokens_in": job.tokens_in,
        "tokens_out": job.tokens_out,
        "usd": job.usd,
        "percent": progress.percent,
        "eta_s": progress.eta_s,
        "error": job.error,
        "parent_version": job.parent_version_id,
        "result_version": job.result_version_id,
        "result_url": page_url(request, "datasets:version", job.result_version_id)
        if job.result_version_id
        else None,
        "created_by": job.created_by.username,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "url": page_url(request, "datasets:job", job.pk),
    }


def _candidate(cand: GenerationCandidate) -> dict[str, Any]:
    return {
        "id": cand.pk,
        "request_index": cand.request_index,
        "index": cand.index,
        "task_id": cand.task_id,
        "status": cand.status,
        "reason": cand.reason,
        "detail": cand.detail,
        "near": cand.near,
        "mutation_score": cand.mutation_score,
        "cpu_ms": cand.cpu_ms,
        "problem": cand.problem,
        "raw": cand.raw,
    }


@router.post(
    "/datasets/{dataset_id}/generate",
    response={201: JobOut},
    url_name="dataset-generate",
    summary="Launch a generation job on a dataset (Idempotency-Key)",
)
def dataset_generate(request: HttpRequest, dataset_id: int, payload: GenerateIn) -> Status[Any]:
    """Members of the dataset's team. Poll `GET /generation-jobs/{id}`; the accepted problems become a new
    version of the dataset when the job ends."""
    given = payload.model_dump(exclude_none=True)
    teacher = {k: given.pop(k, "") for k in ("base_url", "model", "api_key")}

    def create() -> tuple[int, Any]:
        try:
            job = generation_job_create(user=caller(request), dataset_id=dataset_id, params=given, **teacher)
        except GenerationJobError as exc:
            raise ApiError(400, str(exc), field=exc.field) from None
        job = selectors.generation_job_get_for_user(user=caller(request), job_id=job.pk)
        return 201, job_object(request, job)

    # The fingerprint leaves the key out: even its hash is not kept.
    fingerprint = request_fingerprint(
        str(dataset_id), json.dumps({**given, **teacher, "api_key": ""}, sort_keys=True)
    )
    status, body = idempotent(request, operation="datasets.generate", fingerprint=fingerprint, create=create)
    return Status(status, body)


@router.get(
    "/generation-jobs/{job_id}", response=JobOut, url_name="generation-job-detail", summary="A generation job"
)
def generation_job_detail(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """Its progress: generated, accepted, rejected by reason, tokens, dollars, ETA; `result_version` once
    it ended with something accepted."""
    return job_object(request, selectors.generation_job_get_for_user(user=caller(request), job_id=job_id))


@router.post(
    "/generation-jobs/{job_id}/cancel",
    response=JobOut,
    url_name="generation-job-cancel",
    summary="Cancel a generation job",
)
def generation_job_cancel_route(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """It stops after the step in progress; what it accepted is still versioned. Idempotent."""
    job = generation_job_cancel(user=caller(request), job_id=job_id)
    return job_object(request, selectors.generation_job_get_for_user(user=caller(request), job_id=job.pk))


@router.get(
    "/generation-jobs/{job_id}/candidates",
    response=Page[CandidateOut],
    url_name="generation-job-candidates",
    summary="A generation job's candidates and their verdicts",
)
def generation_job_candidates(
    request: HttpRequest, job_id: int, status: str = "", page: int = 1, per_page: int = PER_PAGE_DEFAULT
) -> dict[str, Any]:
    """`status`: pending, accepted or rejected (rejected ones carry `reason` and `detail`)."""
    if status and status not in CandidateStatus.values:
        raise ApiError(
            400, f"status: one of {', '.join(CandidateStatus.values)}, not {status!r}", field="status"
        )
    job = selectors.generation_job_get_for_user(user=caller(request), job_id=job_id, at_least=Role.VIEWER)
    return paged(
        selectors.generation_candidate_list(job=job, status=status),
        page=page,
        per_page=per_page,
        to_item=_candidate,
    )
