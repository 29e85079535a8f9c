"""Provenance: what produced each attempt of a run, and "re-run exactly" from it (docs/runs.md).

The launcher reports what it runs with in its claim (`lifecycle.run_claim` records it); the spec API
records the resolved spec it served. Both land in the attempt's `RunAttempt`.
"""

import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from datasets_app.selectors import problem_list_for_run
from runs import launch
from runs.events import string_problem
from runs.models import Run, RunAttempt
from runs.spec import model_section
from workers.provenance import resolved_ranks
from workers.spec import RunConfig, SettingError, config_from_dict

PROVENANCE_MAX_BYTES = 64 * 1024
PROVENANCE_MAX_DEPTH = 8
PROVENANCE_MAX_CHARS = 1000  # per string: a version, a GPU name, a host; longer ones are cut


class ProvenanceError(ValueError):
    """The claim's "provenance" is not one the control plane stores; the message says why."""


def provenance_clean(value: object) -> dict[str, Any]:
    """The launcher's provenance, bounded: a JSON object of at most PROVENANCE_MAX_BYTES, nested at most
    PROVENANCE_MAX_DEPTH deep, every string (keys too) stripped and cut to PROVENANCE_MAX_CHARS. Raises
    ProvenanceError saying what is wrong; the page shows what it stores, so nothing unbounded goes in."""
    if not isinstance(value, dict):
        raise ProvenanceError(f"provenance: expected a JSON object, got {type(value).__name__}")
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > PROVENANCE_MAX_BYTES:
        raise ProvenanceError(f"provenance: {size} bytes is over the {PROVENANCE_MAX_BYTES}-byte limit")
    cleaned: dict[str, Any] = _clean(value, path="provenance", depth=0)
    return cleaned


def _clean(value: Any, *, path: str, depth: int) -> Any:
    if isinstance(value, str):
        if (problem := string_problem(value)) is not None:
            raise ProvenanceError(f"{path}: {problem}")
        return value.strip()[:PROVENANCE_MAX_CHARS]
    if isinstance(value, dict | list) and depth >= PROVENANCE_MAX_DEPTH:
        raise ProvenanceError(f"{path}: nested deeper than {PROVENANCE_MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = _clean(key, path=f"{path} key", depth=depth)
            out[name] = _clean(item, path=f"{path}.{name}", depth=depth + 1)
        return out
    if isinstance(value, list):
        return [_clean(item, path=f"{path}[{i}]", depth=depth + 1) for i, item in enumerate(value)]
    return value  # numbers, booleans, null: json.loads made nothing else


def attempt_spec_record(*, run_id: int, attempt: int, spec: dict[str, Any]) -> None:
    """Keep the spec served for the attempt: the first one served wins, a later fetch changes nothing
    (a retried or a second launcher's fetch of the same attempt gets the same spec anyway)."""
    if RunAttempt.objects.filter(run_id=run_id, attempt=attempt, spec__isnull=False).exists():
        return  # the common case of a repeated fetch: no write of a large JSON document
    with transaction.atomic():
        record, created = RunAttempt.objects.get_or_create(
            run_id=run_id, attempt=attempt, defaults={"spec": spec, "spec_served_at": timezone.now()}
        )
        if not created:
            RunAttempt.objects.filter(pk=record.pk, spec__isnull=True).update(
                spec=spec, spec_served_at=timezone.now()
            )


@dataclass(frozen=True)
class AttemptView:
    """One attempt as the run page shows it."""

    record: RunAttempt
    versions: list[tuple[str, str]]  # (package, version or "–"), in the order the node sent them
    gpus: list[str]
    spec_summary: str  # the spec as JSON, problems elided to their count
    ranks: str  # "2 GPU ranks", "4 CPU ranks" as the node resolved them; "" when it did not say
    nodes: list[str]  # the gang in node-rank order, "h1 (rank 0, 2 ranks)"; [] before it formed
    steps: str  # "steps 3–30" of the metrics it reported, "step 3", or "" before any


def _ranks_label(provenance: object) -> str:
    resolved = resolved_ranks(provenance)
    if resolved is None:
        return ""
    ranks, gpu = resolved
    return f"{ranks} {'GPU' if gpu else 'CPU'} rank{'s' if ranks != 1 else ''}"


def attempt_list(*, run: Run) -> list[AttemptView]:
    """The run's attempts with their provenance, newest first."""
    shown = []
    for record in RunAttempt.objects.filter(run=run).order_by("-attempt"):
        provenance = record.provenance if isinstance(record.provenance, dict) else {}
        versions = provenance.get("versions")
        gpus = provenance.get("gpus")
        shown.append(
            AttemptView(
                record=record,
                versions=[(str(k), "–" if v is None else str(v)) for k, v in versions.items()]
                if isinstance(versions, dict)
                else [],
                gpus=[_gpu_label(gpu) for gpu in gpus] if isinstance(gpus, list) else [],
                spec_summary=spec_summary(record.spec) if record.spec is not None else "",
                ranks=_ranks_label(provenance),
                nodes=_node_labels(record.nodes),
                steps=_steps_label(record.first_step, record.last_step),
            )
        )
    return shown


def _node_labels(nodes: object) -> list[str]:
    """The attempt's gang as RunAttempt.nodes records it (runs/gang.py), in node-rank order."""
    labels = []
    for member in nodes if isinstance(nodes, list) else []:
        if not isinstance(member, dict):
            continue
        ranks = member.get("ranks")
        count = f", {ranks} rank{'s' if ranks != 1 else ''}" if isinstance(ranks, int) else ""
        labels.append(f"{member.get('node') or '?'} (node rank {member.get('node_rank', '?')}{count})")
    return labels


def _steps_label(first: int | None, last: int | None) -> str:
    if first is None or last is None:
        return ""
    return f"step {first}" if first == last else f"steps {first}–{last}"


def _gpu_label(gpu: object) -> str:
    if isinstance(gpu, dict):
        return " ".join(str(gpu.get(k, "")) for k in ("name", "memory")).strip()
    return str(gpu)


def spec_summary(spec: dict[str, Any]) -> str:
    """The spec as indented JSON with its problems elided to a count: it can be megabytes of them."""
    problems = spec.get("problems")
    if isinstance(problems, list):
        spec = {**spec, "problems": f"{len(problems)} problems (in the download)"}
    return json.dumps(spec, indent=1, ensure_ascii=False)


def attempt_get(*, run: Run, attempt: int) -> RunAttempt | None:
    return RunAttempt.objects.filter(run=run, attempt=attempt).first()


class RerunError(launch.RunLaunchError):
    """The attempt cannot be re-run exactly; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="__all__")


def run_rerun_exact(*, user: User, run: Run, attempt: int) -> launch.LaunchResult:
    """A new run with the dataset version, model, pool and config of the attempt's resolved spec,
    through `launch.run_launch` (team and budget checks apply). Refused, saying why, when that spec was
    never served or what it names is gone, changed or no longer this team's to read."""
    record = attempt_get(run=run, attempt=attempt)
    if record is None or not isinstance(record.spec, dict):
        raise RerunError(f"attempt {attempt} of run #{run.pk} has no recorded spec: no node fetched one")
    spec = record.spec
    version = run.dataset_version
    dataset = spec.get("dataset")
    dataset = dataset if isinstance(dataset, dict) else {}
    if dataset.get("content_hash") != version.content_hash:
        raise RerunError(
            f"the dataset version attempt {attempt} trained on ({dataset.get('name')} "
            f"v{dataset.get('version')}) is gone: {version} no longer has its content"
        )
    train = spec.get("train")
    if not isinstance(train, dict):
        raise RerunError(f"attempt {attempt}'s recorded spec has no train section")
    # The trainer's settings as served; the control plane's own (budget, stops) as the run had them.
    control = {key: value for key, value in run.config.items() if key not in train}
    try:
        config = config_from_dict({**control, **train}, config_type=RunConfig)
    except SettingError as exc:
        raise RerunError(
            f"attempt {attempt}'s setting {exc.key} is no longer accepted: {exc.message}"
        ) from None
    _check_same_problems(spec=spec, run=run, include_unverified=config.include_unverified)
    _check_same_model(spec=spec, run=run, attempt=attempt)
    return launch.run_launch(
        user=user,
        dataset_version=version,
        name=f"{run.name} (re-run of #{run.pk}.{attempt})"[:200],
        config=config,
        pool=run.pool,
        team=run.team,
        model=run.model,
    )


def _check_same_problems(*, spec: dict[str, Any], run: Run, include_unverified: bool) -> None:
    """Verification may have changed which problems of the version a run trains on since."""
    problems = spec.get("problems")
    served = [p.get("task_id") for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []
    now = list(
        problem_list_for_run(version=run.dataset_version, include_unverified=include_unverified).values_list(
            "task_id", flat=True
        )
    )
    if served != now:
        raise RerunError(
            f"{run.dataset_version} no longer trains on the same problems ({len(served)} then, {len(now)} "
            "now: verification changed since): clone the run instead"
        )


def _check_same_model(*, spec: dict[str, Any], run: Run, attempt: int) -> None:
    """The model section a run of this model would be served now must be the one the attempt was: a
    registered model whose source or settings changed since, or a built-in model since changed, is no
    longer what it trained. Readable and ready are run_launch's checks."""
    served = spec.get("model")
    if served != model_section(run=run):
        name = run.model.name if run.model else "the built-in model"
        raise RerunError(
            f"{name} is no longer what attempt {attempt} was served (its spec's model section differs): "
            "clone the run instead"
        )
