"""Prices, accrued cost and budgets.

Money is Decimal (six places: a ten-second tick of a cheap CPU pool is a fraction of a cent). The ledger
is one row per (run, UTC day), so spend by day, user, pool and run is a GROUP BY over a small table.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from runs.models import Run


class GpuPrice(models.Model):
    """What one GPU (or, on a CPU pool, one trainer process) costs per hour on a pool."""

    pool = models.CharField(max_length=100, unique=True)
    gpu_type = models.CharField(max_length=100, help_text='e.g. "H100-80GB"; "cpu" for a CPU-only pool.')
    # Never negative: a negative price makes every team's spend go down, and then no budget stops a run.
    usd_per_gpu_hour = models.DecimalField(
        max_digits=16, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["pool"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(usd_per_gpu_hour__gte=0), name="gpu_price_usd_non_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.pool} ({self.gpu_type}): ${self.usd_per_gpu_hour}/GPU-hour"

    @property
    def is_cpu(self) -> bool:
        return self.gpu_type.strip().lower() == "cpu"


class RunCost(models.Model):
    """A run's cost so far. `accrued_until` is the idempotency key of accrual: every tick moves it forward
    with a conditional UPDATE, so a repeated or racing tick adds nothing."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="cost")
    accrued_until = models.DateTimeField()
    usd = models.DecimalField(max_digits=16, decimal_places=6, default=Decimal(0))
    gpu_hours = models.FloatField(default=0.0)
    gpus = models.IntegerField(help_text="GPUs (or CPU processes) billed.")
    # Accrued up to the run's end; reopened if the run is resumed.
    final = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"run {self.run_id}: ${self.usd}"


class CostEntry(models.Model):
    """The ledger: a run's cost on one UTC day."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    usd = models.DecimalField(max_digits=16, decimal_places=6, default=Decimal(0))
    gpu_hours = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "day"], name="cost_entry_run_day")]
        indexes = [models.Index(fields=["day"], name="cost_entry_day")]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.day}: ${self.usd}"


class MonthlyBudget(models.Model):
    """A user's spend cap per calendar month (UTC)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    usd_per_month = models.DecimalField(max_digits=16, decimal_places=6)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user}: ${self.usd_per_month}/month"


class TeamMonthlyBudget(models.Model):
    """A team's spend cap per calendar month (UTC), over every run of the team."""

    team = models.OneToOneField("accounts.Team", on_delete=models.CASCADE, related_name="+")
    usd_per_month = models.DecimalField(max_digits=16, decimal_places=6)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team__name"]

    def __str__(self) -> str:
        return f"{self.team}: ${self.usd_per_month}/month"
