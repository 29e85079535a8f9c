"""Generation jobs (docs/datasets.md, "Generation jobs"): every state change of a job, from its launch to
the version of what it accepted.

The job advances in steps, each a call of `generation_job_step` on the control queue (it needs the
network and the API key; the sandbox queue holds neither):

1. candidates whose sandbox results came back are decided by the gate (datasets_app/gate.py);
2. if the job is done (count reached, budget spent, cancelled, out of requests) it ends, and what it
   accepted becomes one new version of its dataset;
3. otherwise ONE teacher request is sent, its reply parsed into candidates and stored, exact and near
   duplicates rejected on the spot, and the rest's sandbox items handed back as a batch.

The task wrapper (datasets_app/tasks.py) sends that batch to the sandbox queue, whose task runs it with no
database (`generation_sandbox_results`) and sends the results to the control queue, whose task stores
them on the candidates (`generation_candidates_record`) and enqueues the next step: no task ever waits on
another, so one worker serving every queue (the embedded default) cannot deadlock.

Restarts: a step holds the job by a lease (`lease_until`); the reaper resumes a job whose lease ran out.
`request_started` is written before a request is sent and `requests` moves past it in the transaction
that stores the reply, so a request whose reply was stored is never sent again and a crash repeats at
most the one that was in flight.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.accounts.models import Role
from datasets_app.genjob_params import GenerationParams, ParamsError
from datasets_app.models import (
    GENERATION_ACTIVE,
    CandidateStatus,
    DatasetVersion,
    GenerationCandidate,
    GenerationJob,
    GenerationStatus,
    Problem,
)
from datasets_app.parsing import ParsedProblem
from datasets_app.selectors import dataset_get_for_user, dataset_readable_q

logger = logging.getLogger(__name__)

RAW_CAP = 4000  # characters of an unparsable reply kept for people to read
DETAIL_CAP = 2000
RETRIES = 3  # a timeout, a 5xx or a dropped connection is tried this many more times
RATE_LIMIT_RETRIES = 6  # a 429 is waited out (Retry-After) this many times before the request fails
FAILED_IN_A_ROW = 3  # requests failed for good in a row: the teacher is down, the job fails


class GenerationJobError(ValueError):
    """Bad launch input, naming the field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Step:
    """What the task does after a step: "sandbox" (send `batch` to the sandbox queue), "again" (enqueue
    the next step), "wait" (nothing: another step holds the job, or its batch is out), "done"."""

    action: str
    batch: dict[str, Any] | None = None


# --- launch and cancel -----------------------------------------------------------------------------------


def _check_url(base_url: str) -> str:
    base_url = base_url.strip()
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(base_url) > 500:
        raise GenerationJobError("base_url", "an http(s) URL such as https://api.openai.com/v1")
    if parts.username or parts.password:
        raise GenerationJobError("base_url", "no credentials in the URL: give the key as the API key")
    return base_url


def generation_job_create(
    *,
    user: User,
    dataset_id: int,
    base_url: str,
    model: str,
    api_key: str,
    params: GenerationParams | Mapping[str, Any],
) -> GenerationJob:
    """Launch a job adding a version to the dataset (members of its team; site admins for a shared one).
    The key is encrypted at rest and never shown again; the first step is enqueued on commit."""
    from datasets_app import secrets, teacher_prompts

    dataset = dataset_get_for_user(
        user=user, dataset_id=dataset_id, at_least=Role.MEMBER, doing="generating problems for"
    )
    if not isinstance(params, GenerationParams):
        try:
            params = GenerationParams.from_mapping(params)
        except ParamsError as exc:
            raise GenerationJobError(exc.field, exc.message) from None
    base_url = _check_url(base_url)
    model = model.strip()
    if not model or len(model) > 200:
        raise GenerationJobError("model", "the model's name, at most 200 characters")
    if len(api_key) > 2000:
        raise GenerationJobError("api_key", "at most 2,000 characters")
    if params.seed_problem_ids:
        readable = Problem.objects.filter(
            dataset_readable_q(user=user, prefix="version__dataset__"), pk__in=params.seed_problem_ids
        ).count()
        if readable != len(set(params.seed_problem_ids)):
            raise GenerationJobError("seed_problem_ids", "a problem id you cannot read, or none such")
    with transaction.atomic():
        job = GenerationJob.objects.create(
            dataset=dataset,
            created_by=user,
            parent_version=dataset.versions.order_by("-number").first(),
            base_url=base_url,
            model=model,
            api_key_encrypted=secrets.encrypt(api_key) if api_key else "",
            api_key_mask=secrets.mask(api_key) if api_key else "",
            params=params.to_json(),
            prompt_template=teacher_prompts.CURRENT,
        )
        transaction.on_commit(lambda: enqueue_step(job.pk))
    return job


def enqueue_step(job_id: int, *, countdown: float = 0) -> None:
    """Hand the job's next step to the control queue; if the broker refuses, the reaper tries again.
    By the task's name: the tasks module imports this one."""
    from controlplane.celery import BROKER_ERRORS, app, broker_unreachable

    try:
        app.send_task(
            "datasets.generation_step",
            args=(job_id,),
            queue=settings.TRIAD_CONTROL_QUEUE,
            countdown=countdown,
        )
    except BROKER_ERRORS as exc:
        logger.warning(
            "generation job %s: step not queued (the reaper retries): %s", job_id, broker_unreachable(exc)
        )


def enqueue_sandbox(job_id: int, batch: dict[str, Any]) -> None:
    from controlplane.celery import BROKER_ERRORS, app, broker_unreachable
    from datasets_app import conf

    try:
        app.send_task("datasets.generation_sandbox", args=(job_id, batch), queue=conf.sandbox_queue())
    except BROKER_ERRORS as exc:
        # Its candidates stay without results: a step resends the batch once the lease runs out.
        logger.warning("generation job %s: sandbox batch not queued: %s", job_id, broker_unreachable(exc))


def generation_job_cancel(*, user: User, job_id: int) -> GenerationJob:
    """Ask a job to stop: the next step ends it (cancelled), versioning what it accepted. Idempotent."""
    from datasets_app.selectors import generation_job_get_for_user

    job = generation_job_get_for_user(user=user, job_id=job_id, at_least=Role.MEMBER, doing="cancelling")
    moved = (
        GenerationJob.objects.filter(pk=job.pk, status__in=GENERATION_ACTIVE)
        .exclude(status=GenerationStatus.CANCELLING)
        .update(status=GenerationStatus.CANCELLING)
    )
    if moved:
        transaction.on_commit(lambda: enqueue_step(job.pk))
    job.refresh_from_db()
    return job


# --- the step ----------------------------------------------------------------------------------------


# The lease this step holds (job id, until): renewed and released only while it is still this step's, so
# a step that outlived its lease (a stuck worker, taken for dead) cannot free the one that resumed the job.
_LEASE: contextvars.ContextVar[tuple[int, dt.datetime] | None] = contextvars.ContextVar(
    "_LEASE", default=None
)


def _lease_renew(job_id: int) -> None:
    held = _LEASE.get()
    if held is None or held[0] != job_id:
        return
    until = timezone.now() + dt.timedelta(seconds=settings.TRIAD_GENJOB_LEASE_S)
    if GenerationJob.objects.filter(pk=job_id, lease_until=held[1]).update(lease_until=until):
        _LEASE.set((job_id, until))


def generation_job_step(*, job_id: int) -> Step:
    """One step of the job (see the module's docstring), under its lease. Idempotent."""
    now = timezone.now()
    until = now + dt.timedelta(seconds=settings.TRIAD_GENJOB_LEASE_S)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    claim = GenerationJob.objects.filter(free, pk=job_id, status__in=GENERATION_ACTIVE)
    if not claim.update(lease_until=until, updated_at=now):
        return Step("wait")
    token = _LEASE.set((job_id, until))
    try:
        return _step(job_id)
    except Exception as exc:  # a bug or a broken dependency: the job says so rather than hang
        logger.exception("generation job %s: step failed", job_id)
        GenerationJob.objects.filter(pk=job_id, status__in=GENERATION_ACTIVE).update(
            status=GenerationStatus.FAILED,
            error=f"internal error: {type(exc).__name__}: {exc}"[:DETAIL_CAP],
            finished_at=timezone.now(),
        )
        return Step("done")
    finally:
        held = _LEASE.get()
        _LEASE.reset(token)
        if held is not None:
            GenerationJob.objects.filter(pk=job_id, lease_until=held[1]).update(
                lease_until=None, updated_at=timezone.now()
            )


def _step(job_id: int) -> Step:
    job = GenerationJob.objects.select_related("dataset").get(pk=job_id)
    params = GenerationParams.from_mapping(job.params)
    if job.status == GenerationStatus.QUEUED:
        GenerationJob.objects.filter(pk=job_id, status=GenerationStatus.QUEUED).update(
            status=GenerationStatus.RUNNING, started_at=timezone.now()
        )
    pending = job.candidates.filter(status=CandidateStatus.PENDING)
    if pending.filter(results__isnull=False).exists():
        _decide(job, list(pending.filter(results__isnull=False)))
        job.refresh_from_db()
    elif pending.exists():
        # Their batch is out on the sandbox queue; after a lease without an answer it was lost: resend.
        lease = dt.timedelta(seconds=settings.TRIAD_GENJOB_LEASE_S)
        if (
            job.sandbox_sent_at
            and job.sandbox_sent_at > timezone.now() - lease
            and job.status != GenerationStatus.CANCELLING
        ):
            return Step("wait")
        if job.status != GenerationStatus.CANCELLING:
            return Step("sandbox", _batch(job, list(pending)))
    ending = _ending(job, params)
    if ending is not None:
        status, error = ending
        _finish(job.pk, status, error=error)
        return Step("done")
    return _request(job, params)


def _ending(job: GenerationJob, params: GenerationParams) -> tuple[str, str] | None:
    if job.status == GenerationStatus.CANCELLING:
        return GenerationStatus.CANCELLED, ""
    if job.accepted >= params.count:
        return GenerationStatus.SUCCEEDED, ""
    spent = job.tokens_in + job.tokens_out
    if params.budget_usd is not None and job.usd >= params.budget_usd:
        return GenerationStatus.BUDGET_STOPPED, f"the dollar budget (${params.budget_usd:.2f}) is spent"
    if params.budget_tokens is not None and spent >= params.budget_tokens:
        return GenerationStatus.BUDGET_STOPPED, f"the token budget ({params.budget_tokens:,}) is spent"
    if job.requests >= params.request_cap:
        note = f"stopped after {job.requests} teacher requests with {job.accepted} of {params.count} accepted"
        return (GenerationStatus.SUCCEEDED if job.accepted else GenerationStatus.FAILED), note
    if job.failures_in_a_row >= FAILED_IN_A_ROW:
        return (
            GenerationStatus.FAILED,
            f"{job.failures_in_a_row} teacher requests in a row failed; the last: {job.error}",
        )
    return None


# --- one teacher request -----------------------------------------------------------------------------


def _seed(params: GenerationParams, index: int) -> ParsedProblem | None:
    if not params.seed_problem_ids:
        return None
    pk = params.seed_problem_ids[index % len(params.seed_problem_ids)]
    row = Problem.objects.filter(pk=pk).first()
    if row is None:
        return None
    return problem_of(row)


def problem_of(row: Problem) -> ParsedProblem:
    """A stored problem as the parser's value (the fields ParsedProblem has, in this tree)."""
    names = {f.name for f in dataclasses.fields(ParsedProblem)}
    values: dict[str, Any] = {}
    for name in names:
        if hasattr(row, name):
            value = getattr(row, name)
            values[name] = _tupled(value) if isinstance(value, list) else value
    return ParsedProblem(**values)


def _tupled(value: list[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for item in value:
        if isinstance(item, dict) and set(item) >= {"input", "output"}:  # a case
            out.append((item["input"], item["output"]))
        elif isinstance(item, list):
            out.append(tuple(item))
        else:
            out.append(item)
    return tuple(out)


# A repository task's snapshot is bytes: kept in JSON as base64 (a teacher's candidates carry none).
_BYTES_FIELDS = frozenset(f.name for f in dataclasses.fields(ParsedProblem) if f.type in (bytes, "bytes"))


def problem_from_json(data: Mapping[str, Any]) -> ParsedProblem:
    names = {f.name for f in dataclasses.fields(ParsedProblem)}
    values: dict[str, Any] = {
        k: _tupled(v) if isinstance(v, list) else v for k, v in data.items() if k in names
    }
    for name in _BYTES_FIELDS & values.keys():
        values[name] = base64.b64decode(values[name])
    return ParsedProblem(**values)


def problem_to_json(problem: ParsedProblem) -> dict[str, Any]:
    raw = dataclasses.asdict(problem)
    for name in _BYTES_FIELDS:
        raw[name] = base64.b64encode(raw[name]).decode("ascii")
    data: dict[str, Any] = json.loads(json.dumps(raw))
    return data


def _teacher(job: GenerationJob, params: GenerationParams) -> Any:
    from datasets_app import secrets
    from datasets_app.teacher import Teacher, TeacherConfig

    key = secrets.decrypt(job.api_key_encrypted) if job.api_key_encrypted else "none"
    return Teacher(
        TeacherConfig(
            base_url=job.base_url, model=job.model, api_key=key, timeout_s=params.timeout_s, max_retries=0
        )
    )


def _cancelled(job_id: int) -> bool:
    return GenerationJob.objects.filter(pk=job_id, status=GenerationStatus.CANCELLING).exists()


def _ask(
    job: GenerationJob, teacher: Any, messages: list[dict[str, Any]], params: GenerationParams, index: int
) -> Any:
    """The reply, or the TeacherError that ended the tries: a 429 waits its Retry-After (at most
    TRIAD_GENJOB_MAX_WAIT_S), a timeout, 5xx or dropped connection is tried RETRIES more times with
    backoff, anything else (auth, bad request) at once. A cancel between tries stops them."""
    from datasets_app.teacher import TeacherError

    tries = limited = 0
    while True:
        try:
            return teacher.ask(
                messages, temperature=params.temperature, max_tokens=params.max_tokens, seed=index
            )
        except TeacherError as exc:
            if exc.kind == "rate_limited" and limited < RATE_LIMIT_RETRIES:
                limited += 1
                wait = exc.retry_after_s if exc.retry_after_s is not None else 2.0**limited
            elif exc.kind in ("timeout", "server", "connection") and tries < RETRIES:
                tries += 1
                wait = 2.0 ** (tries - 1)
            else:
                return exc
        if _cancelled(job.pk):
            return TeacherError("cancelled", "the job was cancelled while the request was retried")
        time.sleep(min(max(wait, 0.0), settings.TRIAD_GENJOB_MAX_WAIT_S))
        _lease_renew(job.pk)


def _request(job: GenerationJob, params: GenerationParams) -> Step:
    from datasets_app import teacher_prompts
    from datasets_app.teacher import Rejected, TeacherError, estimate_usd, parse_candidates

    index = job.requests
    GenerationJob.objects.filter(pk=job.pk, requests=index).update(request_started=index)
    topic = params.topics[index % len(params.topics)] if params.topics else ""
    remaining = max(1, params.count - job.accepted)
    messages = teacher_prompts.render(
        job.prompt_template,
        kind=params.kind,
        topic=topic,
        difficulty=params.difficulty,
        seed_problem=_seed(params, index),
        reasoning=params.reasoning,
        n=min(params.n, remaining),
    )
    teacher = _teacher(job, params)
    try:
        answer = _ask(job, teacher, messages, params, index)
    finally:
        teacher.close()
    if isinstance(answer, TeacherError):
        return _request_failed(job, params, index, answer)
    reply = answer
    parsed = parse_candidates(reply.text, kind=params.kind, job_prefix=f"gen{job.pk}", request_index=index)
    gated = gate_for(job)
    rows: list[GenerationCandidate] = []
    for i, item in enumerate(parsed):
        row = GenerationCandidate(job=job, request_index=index, index=i)
        if isinstance(item, Rejected):
            row.status, row.reason, row.detail = (
                CandidateStatus.REJECTED,
                item.reason,
                item.detail[:DETAIL_CAP],
            )
            row.raw = _cap(item.raw)
        else:
            row.task_id = item.task_id
            row.problem = problem_to_json(item)
            _early_dedup(row, item, gated)
        rows.append(row)
    usd = estimate_usd(
        reply.tokens_in,
        reply.tokens_out,
        usd_per_mtok_in=params.usd_per_mtok_in,
        usd_per_mtok_out=params.usd_per_mtok_out,
    )
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked.requests != index:  # another step stored this request meanwhile: keep theirs
            return Step("again")
        GenerationCandidate.objects.bulk_create(rows)
        rejected = dict(locked.rejected_by_reason or {})
        for row in rows:
            if row.status == CandidateStatus.REJECTED:
                rejected[row.reason] = rejected.get(row.reason, 0) + 1
        locked.requests = index + 1
        locked.request_started = None
        locked.generated += len(rows)
        locked.rejected_by_reason = rejected
        locked.tokens_in += reply.tokens_in
        locked.tokens_out += reply.tokens_out
        locked.usd += usd
        locked.failures_in_a_row = 0
        locked.save(
            update_fields=[
                "requests",
                "request_started",
                "generated",
                "rejected_by_reason",
                "tokens_in",
                "tokens_out",
                "usd",
                "failures_in_a_row",
                "updated_at",
            ]
        )
    pending = [r for r in rows if r.status == CandidateStatus.PENDING]
    if not pending:
        return Step("again")
    return Step(
        "sandbox",
        _batch(
            locked,
            list(
                GenerationCandidate.objects.filter(
                    job=job, request_index=index, status=CandidateStatus.PENDING
                )
            ),
        ),
    )


def _cap(text: str) -> str:
    if len(text) <= RAW_CAP:
        return text
    return text[:RAW_CAP] + f"… ({len(text) - RAW_CAP} more characters)"


def _request_failed(job: GenerationJob, params: GenerationParams, index: int, exc: Any) -> Step:
    """A request that failed for good counts as sent (it is not repeated); auth and bad requests fail the
    job (every next one would fail alike); a timeout is kept as a rejection with reason "timeout"."""
    message = f"teacher: {exc.kind}: {exc.message}"[:DETAIL_CAP]
    if exc.kind == "cancelled":
        GenerationJob.objects.filter(pk=job.pk).update(request_started=None)
        return Step("again")
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked.requests != index:
            return Step("again")
        if exc.kind == "timeout":
            GenerationCandidate.objects.create(
                job=job,
                request_index=index,
                index=0,
                status=CandidateStatus.REJECTED,
                reason="timeout",
                detail=f"the teacher did not answer within {params.timeout_s:g} s ({RETRIES + 1} tries)",
            )
            rejected = dict(locked.rejected_by_reason or {})
            rejected["timeout"] = rejected.get("timeout", 0) + 1
            locked.rejected_by_reason = rejected
        locked.requests = index + 1
        locked.request_started = None
        locked.requests_failed += 1
        locked.failures_in_a_row += 1
        locked.error = message
        locked.save(
            update_fields=[
                "requests",
                "request_started",
                "requests_failed",
                "failures_in_a_row",
                "rejected_by_reason",
                "error",
                "updated_at",
            ]
        )
    if exc.kind in ("auth", "bad_request"):
        _finish(job.pk, GenerationStatus.FAILED, error=message)
        return Step("done")
    return Step("again")


# --- the gate ----------------------------------------------------------------------------------------


# Per worker process: the job's dedup corpus, built once (team versions, HumanEval, ...) and grown by the
# problems the job accepts; rebuilt after a restart or when another process advanced the job.
@dataclass
class _Gated:
    gate: Any
    corpus: Any  # the gate's DedupIndex (datasets_app/dedup.py)
    accepted: int  # the job's accepted count it holds


_GATES: dict[int, _Gated] = {}
MEMORY_MB = 512


def gate_for(job: GenerationJob) -> _Gated:
    from datasets_app import conf
    from datasets_app.corpus import corpus_build, team_corpus
    from datasets_app.gate import Gate

    cached = _GATES.get(job.pk)
    accepted = job.candidates.filter(status=CandidateStatus.ACCEPTED)
    count = accepted.count()
    if cached is not None and cached.accepted == count:
        return cached
    if job.dataset.team is not None:
        corpus = team_corpus(team=job.dataset.team)
    else:  # a shared dataset: what every team reads
        corpus = corpus_build(
            version_ids=DatasetVersion.objects.filter(dataset__team__isnull=True).values_list("pk", flat=True)
        )
    for task_id, problem in accepted.values_list("task_id", "problem"):
        corpus.add(task_id, _text(problem_from_json(problem or {})))
    gate = Gate(
        corpus,
        timeout_s=conf.verify_timeout_s(),
        memory_mb=MEMORY_MB,
        min_mutation_score=conf.gate_min_mutation_score(),
    )
    gated = _Gated(gate, corpus, count)
    if len(_GATES) > 32:
        _GATES.clear()
    _GATES[job.pk] = gated
    return gated


def _text(problem: ParsedProblem) -> str:
    return problem.prompt + "\n" + problem.solution


def _early_dedup(row: GenerationCandidate, problem: ParsedProblem, gated: _Gated) -> None:
    """A copy (of the job's own output, of what the team reads, of a benchmark) needs no sandbox time:
    the gate's text-only check rejects it before any."""
    verdict = gated.gate.precheck(problem, row.task_id)
    if verdict is not None:
        row.status, row.reason, row.detail = (
            CandidateStatus.REJECTED,
            verdict.reason,
            verdict.detail[:DETAIL_CAP],
        )
        row.near = (verdict.near or "")[:300]


def _batch(job: GenerationJob, candidates: list[GenerationCandidate]) -> dict[str, Any]:
    """The gate's sandbox items of these candidates, as one batch; each candidate remembers its items."""
    from datasets_app import conf

    gated = gate_for(job)
    items: list[dict[str, Any]] = []
    for cand in candidates:
        own = gated.gate.sandbox_items(problem_from_json(cand.problem or {}), cand.task_id)
        cand.item_ids = [item["id"] for item in own]
        cand.results = None
        cand.save(update_fields=["item_ids", "results"])
        items.extend(own)
    GenerationJob.objects.filter(pk=job.pk).update(sandbox_sent_at=timezone.now())
    limits = gated.gate.limits
    # Whole: the sandbox queue's task runs it with no database (datasets_app/tasks.py).
    return {"job_id": job.pk, "limits": limits, "items": items, "mode": conf.verify_sandbox_mode()}


def generation_candidates_record(*, job_id: int, results: list[dict[str, Any]]) -> int:
    """On the control queue, what a sandbox worker sent back: store each candidate's results (by item
    id). Idempotent (candidates without results only); returns how many candidates got theirs."""
    by_id = {r.get("id"): r for r in results}
    stored = 0
    with transaction.atomic():
        for cand in GenerationCandidate.objects.select_for_update().filter(
            job_id=job_id, status=CandidateStatus.PENDING, results__isnull=True
        ):
            own = [by_id.get(i) for i in cand.item_ids]
            if cand.item_ids and all(r is not None for r in own):
                cand.results = own
                cand.save(update_fields=["results"])
                stored += 1
        if stored:
            GenerationJob.objects.filter(pk=job_id).update(sandbox_sent_at=None)
    return stored


def _decide(job: GenerationJob, candidates: list[GenerationCandidate]) -> None:
    gated = gate_for(job)
    verdicts = [
        (cand, gated.gate.decide(problem_from_json(cand.problem or {}), cand.task_id, cand.results or []))
        for cand in candidates
    ]
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        rejected = dict(locked.rejected_by_reason or {})
        accepted = 0
        for cand, verdict in verdicts:
            moved = GenerationCandidate.objects.filter(pk=cand.pk, status=CandidateStatus.PENDING).update(
                status=CandidateStatus.ACCEPTED if verdict.accepted else CandidateStatus.REJECTED,
                reason=verdict.reason,
                detail=verdict.detail[:DETAIL_CAP],
                near=(verdict.near or "")[:300],
                mutation_score=verdict.mutation_score,
                cpu_ms=verdict.cpu_ms,
            )
            if not moved:
                continue
            if verdict.accepted:
                accepted += 1
            else:
                rejected[verdict.reason] = rejected.get(verdict.reason, 0) + 1
        locked.accepted += accepted
        locked.rejected_by_reason = rejected
        locked.save(update_fields=["accepted", "rejected_by_reason", "updated_at"])
    # The gate added what it accepted to its index; the cache key follows.
    gated.accepted = locked.accepted


# --- the end -----------------------------------------------------------------------------------------


def _finish(job_id: int, status: str, *, error: str = "") -> None:
    """End the job: what it accepted (if anything) becomes one new version, unless it already has one."""
    _GATES.pop(job_id, None)
    job = GenerationJob.objects.select_related("dataset", "created_by", "parent_version").get(pk=job_id)
    if job.status not in GENERATION_ACTIVE:
        return
    # Whatever ended it, what was accepted is kept (a failed teacher after 50 good problems: 50).
    version = job.result_version or (_version_of(job) if job.accepted else None)
    GenerationJob.objects.filter(pk=job_id, status__in=GENERATION_ACTIVE).update(
        status=status,
        error=error[:DETAIL_CAP] if error else job.error,
        finished_at=timezone.now(),
        result_version=version,
        request_started=None,
        sandbox_sent_at=None,
    )


def _version_of(job: GenerationJob) -> DatasetVersion | None:
    """The accepted problems (at most `count`, in the order they came) as one new version."""
    from datasets_app.genjob_version import generation_version_create

    params = GenerationParams.from_mapping(job.params)
    accepted = list(
        job.candidates.filter(status=CandidateStatus.ACCEPTED).order_by("request_index", "index")[
            : params.count
        ]
    )
    if not accepted:
        return None
    return generation_version_create(
        job=job, accepted=[(problem_from_json(c.problem or {}), c) for c in accepted]
    )


# --- the reaper --------------------------------------------------------------------------------------


def generation_jobs_resume(*, now: dt.datetime | None = None) -> list[int]:
    """Beat, on the control queue: active jobs that no step holds (a worker died mid-step, or a message
    was lost) get their next step enqueued. A step in progress holds its lease, so it is left alone."""
    now = now or timezone.now()
    quiet = now - dt.timedelta(seconds=settings.TRIAD_GENJOB_LEASE_S)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    ids = list(
        GenerationJob.objects.filter(free, status__in=GENERATION_ACTIVE, updated_at__lt=quiet).values_list(
            "pk", flat=True
        )
    )
    for pk in ids:
        GenerationJob.objects.filter(pk=pk).update(updated_at=now)  # not again until another quiet spell
        enqueue_step(pk)
    return ids


# --- the sandbox queue's half --------------------------------------------------------------------------


def generation_sandbox_results(*, batch: Mapping[str, Any]) -> list[dict[str, Any]]:
    """On a sandbox worker, no database: the batch's items run (the sandbox's result cache bypassed, so
    re-runs really run), one result each. Raises SandboxUnavailable where this node cannot isolate."""
    from workers.sandbox import Item, Limits, run_batch

    items = [Item(**item) for item in batch["items"]]
    mode = str(batch.get("mode") or "warm")
    results = run_batch(items, Limits(**batch["limits"]), mode=mode, cache=False)
    return [r.to_dict() for r in results]


def generation_sandbox_refused(*, batch: Mapping[str, Any], reason: str) -> list[dict[str, Any]]:
    """No sandbox could run the batch after every retry: its items end `sandbox_error` (the gate rejects
    such candidates with reason "sandbox_error")."""
    return [
        {
            "id": item["id"],
            "passed": False,
            "error_class": "sandbox_error",
            "tests_passed": 0,
            "tests_total": 0,
            "duration_ms": 0,
            "stdout": "",
            "stderr": reason,
            "exception_type": "",
            "failing_test": "",
            "cpu_ms": 0.0,
        }
        for item in batch["items"]
    ]


def generation_sandbox_run(*, job_id: int, batch: Mapping[str, Any]) -> int:
    """Both halves in this process (tests, the benchmark): run the batch and store its results."""
    return generation_candidates_record(job_id=job_id, results=generation_sandbox_results(batch=batch))
