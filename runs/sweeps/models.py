"""A sweep: one base launch (dataset version, model, pool, team, settings) and axes over run-spec
settings, expanded into runs named `<sweep>-<i>`; and the record of its successive halving."""

from django.conf import settings
from django.db import models


class SweepMethod(models.TextChoices):
    GRID = "grid", "Grid"
    RANDOM = "random", "Random"


class SweepStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    STOPPED = "stopped", "Stopped"


class Sweep(models.Model):
    name = models.CharField(max_length=100)
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="sweeps")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sweeps")
    dataset_version = models.ForeignKey(
        "datasets_app.DatasetVersion", on_delete=models.PROTECT, related_name="+"
    )
    model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pool = models.CharField(max_length=100)
    method = models.CharField(max_length=8, choices=SweepMethod.choices, default=SweepMethod.GRID)
    count = models.PositiveIntegerField(null=True, blank=True)  # random: how many runs
    seed = models.BigIntegerField(null=True, blank=True)  # random: the draw, reproducible
    base_config = models.JSONField(default=dict)  # the settings given besides the axes
    axes = models.JSONField(default=dict)  # as given: {"lr": [1e-5, 3e-5]} or {"lr": {"low":…}}
    # Successive halving: {"step": s, "fraction": f, "metric": key, "goal": "max"|"min", "every": k|None}
    # or {} for none (docs/sweeps.md).
    halving = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=SweepStatus.choices, default=SweepStatus.ACTIVE)
    status_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"], name="sweep_team_created")]

    def __str__(self) -> str:
        return self.name


class SweepRun(models.Model):
    """A run of a sweep, with the axes' values it was launched with."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="sweep_runs")
    run = models.OneToOneField("runs.Run", on_delete=models.CASCADE, related_name="sweep_run")
    index = models.PositiveIntegerField()  # 1-based: the run is named <sweep>-<index>
    params = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sweep", "index"], name="sweep_run_index_unique")]
        ordering = ["index"]

    def __str__(self) -> str:
        return f"{self.sweep.name}-{self.index}"


class SweepRung(models.Model):
    """A rung of successive halving, judged once (unique per sweep and step): the runs compared and
    which of them it stopped (SweepHalt)."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="rungs")
    step = models.PositiveIntegerField()
    metric = models.CharField(max_length=200)
    fraction = models.FloatField()
    compared = models.PositiveIntegerField()  # runs that reached the step with a value
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sweep", "step"], name="sweep_rung_step_unique")]
        ordering = ["step"]

    def __str__(self) -> str:
        return f"{self.sweep.name} rung at step {self.step}"


class SweepHalt(models.Model):
    rung = models.ForeignKey(SweepRung, on_delete=models.CASCADE, related_name="halts")
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="+")
    value = models.FloatField()  # the metric's value at the rung's step
    reason = models.TextField()

    class Meta:
        ordering = ["value"]

    def __str__(self) -> str:
        return self.reason
