"""The spec a GPU node trains from: everything it needs, and no database credentials."""

import base64
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Count, Max

from datasets_app.models import Problem, ProblemKind, RepoSnapshot
from datasets_app.selectors import problem_list_for_run
from runs.models import Node, Run, RunClaim
from runs.registry.models import RegisteredModel
from workers.spec import config_from_stored

SANDBOX_LIMITS = {"timeout_s": 2.0, "memory_mb": 512}  # what each (code, tests) item may use
TINY_MODEL = {"kind": "tiny", "path": None, "d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 512}


def model_section(*, run: Run) -> dict[str, Any]:
    """The spec's "model": the built-in tiny model, or the registered Hugging Face model, by the source
    it was registered with — the node resolves it again from its own disks and cache (docs/models.md)."""
    model = run.model
    if model is None:
        return dict(TINY_MODEL)
    return registered_model_section(model=model)


def registered_model_section(*, model: RegisteredModel) -> dict[str, Any]:
    """The spec's "model" of a registered Hugging Face model (a run's, or one evaluated on its own)."""
    return {
        "kind": "hf",
        "path": model.source,
        "tokenizer": model.tokenizer or None,
        "chat": model.chat,
        "dtype": model.dtype,
        "stop": list(model.stop),
    }


def run_resources(*, run: Run) -> dict[str, Any]:
    """What the run asks of each node: how many nodes train it at once (`nodes`: a gang of them), its GPUs
    per node (0: the node decides — all its GPUs, or on a CPU pool the trainer processes the node is set
    to start; workers/launcher.py resolves it there), and whether it trains on GPUs: it does where the
    pool's registered nodes have them.

    A resumed gang run (attempt > 1 whose earlier attempt formed a gang) is pinned to the ranks per node
    that attempt ran with (its RunClaim.ranks), whatever its GPUs per node say: a ZeRO checkpoint is
    sharded over its world size, so the new attempt must have the same one to load it."""
    config = config_from_stored(run.config)
    return {
        "num_nodes": config.nodes,
        "procs_per_node": _ranks_ran_with(run=run, nodes=config.nodes) or config.gpus_per_node,
        "gpu": Node.objects.filter(pool=run.pool, gpu_count__gt=0).exists(),
    }


def _ranks_ran_with(*, run: Run, nodes: int) -> int | None:
    """The ranks per node of the latest earlier attempt of `run` that formed its gang of `nodes` (all its
    claims in place); None for a first attempt, a single-node run, or when no earlier attempt formed."""
    if run.attempt <= 1 or nodes <= 1:
        return None
    formed = (
        RunClaim.objects.filter(run=run, attempt__lt=run.attempt)
        .values("attempt")
        .annotate(members=Count("pk"), ranks=Max("ranks"))
        .filter(members__gte=nodes)
        .order_by("-attempt")
        .first()
    )
    return formed["ranks"] if formed else None


def program_fields(problem: Problem) -> dict[str, Any]:
    """A program problem's kind, cases and comparison for the spec (docs/datasets.md, "Program
    problems"); nothing for a function problem, whose spec entry stays as it was."""
    if problem.kind != ProblemKind.PROGRAM:
        return {}
    return {"kind": problem.kind, "cases": list(problem.cases), "compare": problem.compare or "whitespace"}


def repo_fields(problem: Problem, sha256: dict[int, str]) -> dict[str, Any]:
    """A repository task's fields for the spec (docs/datasets.md, "Repository tasks"): its kind, no
    entry point and no tests (the test patch is applied at grading only), and its "repo" section naming
    its snapshot by sha256 (the spec's top-level "snapshots" holds the bytes); nothing for other kinds.
    `sha256`: snapshot pk -> sha256, from `repo_snapshots`."""
    if problem.kind != ProblemKind.REPO:
        return {}
    return {
        "kind": problem.kind,
        "entry_point": "",
        "tests": "",
        "repo": {
            "FAIL_TO_PASS": list(problem.fail_to_pass),
            "PASS_TO_PASS": list(problem.pass_to_pass),
            "runner": problem.runner or "unittest",
            "test_patch": problem.tests,
            "repo": problem.source,
            "snapshot_sha256": sha256.get(problem.snapshot_id or 0, ""),
        },
    }


def repo_snapshots(problems: Iterable[Problem]) -> tuple[dict[int, str], dict[str, str]]:
    """(snapshot pk -> sha256, sha256 -> base64 .tar.gz) of these problems' repository snapshots, each
    read once however many tasks share it."""
    ids = {p.snapshot_id for p in problems if p.kind == ProblemKind.REPO and p.snapshot_id is not None}
    sha256: dict[int, str] = {}
    blobs: dict[str, str] = {}
    for pk, sha, data in RepoSnapshot.objects.filter(pk__in=ids).values_list("pk", "sha256", "data"):
        sha256[pk] = sha
        blobs[sha] = base64.b64encode(bytes(data)).decode("ascii")
    return sha256, blobs


def problem_item(problem: Problem, sha256: dict[int, str]) -> dict[str, Any]:
    """One problem of the spec, as the trainer (workers/trainer/spec.py) and the evaluator read it."""
    return {
        "task_id": problem.task_id,
        "prompt": problem.prompt,
        "entry_point": problem.entry_point,
        "solution": problem.solution,
        "tests": problem.tests,
        "reasoning": problem.reasoning,
        "stop": list(problem.stop),  # the dataset's; the node adds the model's (workers/trainer/prompting.py)
        "verifier": problem.verifier,  # over the run's reward_custom_source for this problem
        **program_fields(problem),
        **repo_fields(problem, sha256),
    }


def run_spec(*, run: Run) -> dict[str, Any]:
    """Everything a GPU node needs to train this run; it holds no database credentials."""
    config = config_from_stored(run.config)
    version = run.dataset_version
    rows = list(problem_list_for_run(version=version, include_unverified=config.include_unverified))
    sha256, snapshots = repo_snapshots(rows)
    problems = [problem_item(p, sha256) for p in rows]
    spec = {
        "run_id": run.pk,
        "attempt": run.attempt,  # what the launcher claims (`run_claim`) before it starts anything
        "name": run.name,
        "control_url": settings.TRIAD_CONTROL_URL,
        "dataset": {
            "name": run.dataset_version.dataset.name,
            "version": run.dataset_version.number,
            "content_hash": run.dataset_version.content_hash,
        },
        "model": model_section(run=run),
        "train": config.train().as_dict(),
        "resources": run_resources(run=run),
        "sandbox": dict(SANDBOX_LIMITS),
        "problems": problems,
    }
    if snapshots:  # repository tasks' repositories, each once (a spec without them stays as it was)
        spec["snapshots"] = snapshots
    return spec
