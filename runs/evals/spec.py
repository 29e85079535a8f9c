"""What a node receives to evaluate a job: the spec workers.trainer.evaluate reads (the model, the
protocol as the "train" section, the eval set's problems) and where the weights come from. No secret:
the node needs neither the control plane's URL nor a run token, it answers on the control queue."""

from typing import Any

from datasets_app.models import DatasetVersion, Problem
from datasets_app.selectors import problem_list_for_run
from runs.evals.models import EvalJob
from runs.models import Node, Run
from runs.spec import (
    SANDBOX_LIMITS,
    model_section,
    program_fields,
    registered_model_section,
    repo_fields,
    repo_snapshots,
)
from workers.spec import TrainConfig, config_from_dict, config_from_stored

# The settings a job chooses (workers.spec defines each: type, range, help); the rest are the run's
# (a checkpoint is loaded as it trained: LoRA, seed) or the defaults (a registered model).
PROTOCOL_KEYS = ("eval_protocol", "eval_samples", "eval_k", "eval_temperature", "max_new_tokens")


def eval_train(*, run: Run | None, protocol: dict[str, Any]) -> dict[str, Any]:
    """The spec's "train" section: the protocol over the run's settings (or the defaults), every problem
    evaluated (none held out, no benchmark on top). Raises SettingError naming the setting a value or a
    rule between settings refuses."""
    base = config_from_stored(run.config).train().as_dict() if run is not None else TrainConfig().as_dict()
    train = {**base, **{key: protocol[key] for key in PROTOCOL_KEYS}}
    train.update(eval_problems=0, eval_every=0, eval_set="none")
    return config_from_dict(train, config_type=TrainConfig).as_dict()


def eval_problems(*, version: DatasetVersion) -> list[Problem]:
    """The version's problems a run on it would train on: the verified ones, reviewers' exclusions out."""
    return list(problem_list_for_run(version=version, include_unverified=False))


def eval_message(*, job: EvalJob) -> dict[str, Any]:
    """The `evals.execute` message: {"spec", "builtin" (a benchmark the node loads, or None), "run_id"
    (whose newest checkpoint the node loads, or None)}."""
    protocol = {key: getattr(job, key) for key in PROTOCOL_KEYS}
    problems = []
    snapshots: dict[str, str] = {}
    if job.dataset_version is not None:
        rows = eval_problems(version=job.dataset_version)
        sha256, snapshots = repo_snapshots(rows)
        problems = [
            {
                "task_id": p.task_id,
                "prompt": p.prompt,
                "entry_point": p.entry_point,
                "solution": p.solution,
                "tests": p.tests,
                "reasoning": p.reasoning,
                "stop": list(p.stop),
                **program_fields(p),
                **repo_fields(p, sha256),
            }
            for p in rows
        ]
    if job.run is not None:
        model = model_section(run=job.run)
    else:
        assert job.model is not None  # the table's constraint: a model or a run
        model = registered_model_section(model=job.model)
    spec = {
        "run_id": job.run_id or 0,
        "name": f"evaluation-{job.pk}",
        "model": model,
        "train": eval_train(run=job.run, protocol=protocol),
        "resources": {
            "num_nodes": 1,
            "procs_per_node": 1,
            "gpu": Node.objects.filter(pool=job.pool, gpu_count__gt=0).exists(),
        },
        "sandbox": dict(SANDBOX_LIMITS),
        "problems": problems,
    }
    if snapshots:  # repository tasks' repositories, each once, as in a run's spec
        spec["snapshots"] = snapshots
    builtin = {"name": job.builtin_set, "problems": job.builtin_problems} if job.builtin_set else None
    return {"spec": spec, "builtin": builtin, "run_id": job.run_id}
