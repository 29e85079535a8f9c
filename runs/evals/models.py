from typing import Any

from django.conf import settings
from django.db import models


class EvalJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # sent to the pool's queue; no node has taken it yet
    RUNNING = "running", "Running"  # a node said it started
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


FINISHED = (EvalJobStatus.SUCCEEDED, EvalJobStatus.FAILED)


class EvalJob(models.Model):
    """One evaluation of a registered model, or of a run's newest checkpoint, on an eval set — a
    dataset version's verified problems or a built-in benchmark's first problems — by the evaluation
    protocol's settings. Owned by the team of what it evaluates."""

    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="eval_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # What is evaluated: exactly one of the two.
    model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.PROTECT, related_name="eval_jobs"
    )
    run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.PROTECT, related_name="eval_jobs"
    )
    # The eval set: a dataset version, or a built-in benchmark (workers.spec.EVAL_SETS) and how many of
    # its first problems (0: all).
    dataset_version = models.ForeignKey(
        "datasets_app.DatasetVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    builtin_set = models.CharField(max_length=32, blank=True)
    builtin_problems = models.PositiveIntegerField(default=0)
    # The protocol: the values of the workers.spec settings of the same names.
    eval_protocol = models.CharField(max_length=16)
    eval_samples = models.PositiveIntegerField()
    eval_k = models.PositiveIntegerField()
    eval_temperature = models.FloatField(null=True, blank=True)
    max_new_tokens = models.PositiveIntegerField()
    pool = models.CharField(max_length=100)
    status = models.CharField(
        max_length=16, choices=EvalJobStatus.choices, default=EvalJobStatus.QUEUED, db_index=True
    )
    error = models.TextField(blank=True)
    node = models.CharField(max_length=200, blank=True)  # the node that answered
    # workers.trainer.evaluate's result: {"problems": [...], "totals": {...}, ...}; {} until it succeeds.
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # The node's last word while it evaluates ("running" answers, every TRIAD_NODE_HEARTBEAT_S): a running
    # job silent past TRIAD_EVAL_LOST_AFTER_S lost its worker (eval_job_reap_lost).
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(model__isnull=False, run__isnull=True)
                | models.Q(model__isnull=True, run__isnull=False),
                name="evaljob_model_xor_run",
            ),
            models.CheckConstraint(
                condition=models.Q(dataset_version__isnull=False, builtin_set="")
                | (models.Q(dataset_version__isnull=True) & ~models.Q(builtin_set="")),
                name="evaljob_version_xor_builtin",
            ),
        ]

    def __str__(self) -> str:
        return f"evaluation #{self.pk}"

    @property
    def is_waiting(self) -> bool:
        return self.status in (EvalJobStatus.QUEUED, EvalJobStatus.RUNNING)

    @property
    def subject_label(self) -> str:
        if self.model_id is not None:
            return f"model {self.model}"
        return f"run #{self.run_id} (newest checkpoint)"

    @property
    def set_label(self) -> str:
        if self.dataset_version_id is not None:
            return str(self.dataset_version)
        count = f"first {self.builtin_problems}" if self.builtin_problems else "all"
        return f"{self.builtin_set} ({count})"

    @property
    def totals(self) -> dict[str, Any]:
        totals = self.result.get("totals") if isinstance(self.result, dict) else None
        return totals if isinstance(totals, dict) else {}

    @property
    def pass_at_1(self) -> float | None:
        return _number(self.totals.get("eval/pass@1"))

    @property
    def pass_at_k(self) -> float | None:
        return _number(self.totals.get(f"eval/pass@{self.eval_k}"))

    @property
    def problems_scored(self) -> int | None:
        value = _number(self.totals.get("eval/problems"))
        return None if value is None else int(value)

    @property
    def problems_unscored(self) -> int | None:
        """Problems left out of every average (each completion for an estimate hit a sandbox error): the
        node's count, or, where its totals lack it, the rows it marked. None before a result."""
        counted = _number(self.totals.get("eval/problems_unscored"))
        if counted is not None:
            return int(counted)
        rows = self.result.get("problems") if isinstance(self.result, dict) else None
        return sum(1 for p in rows if p.get("unscored")) if isinstance(rows, list) and self.result else None

    @property
    def n_min(self) -> int | None:
        """The fewest valid samples behind a scored problem's estimate (fewer than eval_samples: sandbox
        errors took some; pass@k needs at least k)."""
        value = _number(self.totals.get("eval/n_min"))
        return None if value is None else int(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
