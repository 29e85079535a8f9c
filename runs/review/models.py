from django.conf import settings
from django.db import models
from django.utils import timezone

from runs.models import Generation, Run


class Label(models.TextChoices):
    MODEL_WRONG = "model_wrong", "Model wrong"
    BAD_TEST = "bad_test", "Bad test"
    BAD_REFERENCE = "bad_reference", "Bad reference"
    FLAKY = "flaky", "Flaky"
    REWARD_HACK = "reward_hack", "Reward hack"


# The labels that say the problem, not the model, is at fault: they flow back into the dataset.
PROBLEM_LABELS = (Label.BAD_TEST, Label.BAD_REFERENCE, Label.FLAKY)


class ReviewItem(models.Model):
    """The review's index of one generation worth a look: every failing one, and passing ones a
    detector flagged. Written at ingest, next to the generation; the review page filters this narrow
    table (no completion or stderr text in it) and joins the generation only for the page's rows."""

    generation = models.OneToOneField(
        Generation, on_delete=models.CASCADE, primary_key=True, related_name="review_item"
    )
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    step = models.IntegerField()
    problem_id = models.CharField(max_length=200)
    error_class = models.CharField(max_length=32)
    exception_type = models.CharField(max_length=100, blank=True)
    passed = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    # ",rule,rule," so that one rule filters with a plain LIKE on any database.
    flag_rules = models.CharField(max_length=300, blank=True)
    flags = models.JSONField(default=list, blank=True)  # [{"rule", "line", "message"}]

    class Meta:
        indexes = [
            models.Index(fields=["run", "step", "generation"], name="review_run_step"),
            models.Index(fields=["run", "error_class", "step", "generation"], name="review_run_class_step"),
            models.Index(fields=["run", "exception_type", "step"], name="review_run_exc_step"),
            models.Index(fields=["run", "problem_id", "step"], name="review_run_problem_step"),
            models.Index(
                fields=["run", "step"], name="review_run_flagged_step", condition=models.Q(flagged=True)
            ),
        ]


class ReviewStepCount(models.Model):
    """Generations per (run, step, error class, exception type), flagged ones among them: the facets
    and the chart over steps read these few rows instead of counting a million generations."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    step = models.IntegerField()
    error_class = models.CharField(max_length=32)
    exception_type = models.CharField(max_length=100, blank=True)
    n = models.IntegerField(default=0)
    flagged = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step", "error_class", "exception_type"], name="review_step_count_unique"
            )
        ]


class ReviewLabel(models.Model):
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="review_labels")
    label = models.CharField(max_length=20, choices=Label.choices)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["generation", "created_by", "created_at"], name="review_label_gen")]


class MatrixStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class CompareMatrix(models.Model):
    """The compare page's test-by-test matrix: three programs (A, B, the reference) run against each
    assert of a problem's tests, in the sandbox, by a task on the sandbox queue — never in the web
    process. Keyed by a hash of everything that decides the result, so the row is also the cache: the
    same code and tests compare again for free. The inputs are kept on the row so the task needs
    nothing else (the generations may be gone by the time it runs)."""

    key = models.CharField(max_length=64, unique=True)  # sha256 of the inputs below
    status = models.CharField(max_length=10, choices=MatrixStatus.choices, default=MatrixStatus.PENDING)
    programs = models.JSONField()  # [A, B, reference]: the programs as the sandbox runs them
    tests = models.TextField()
    entry_point = models.CharField(max_length=200, blank=True)
    # [{"source": assert, "cells": [{"passed": bool | None, "error_class": str}] × 3}]; None: the
    # sandbox itself failed on that cell.
    rows = models.JSONField(default=list, blank=True)
    truncated = models.IntegerField(default=0)  # asserts left out past the row cap
    error = models.TextField(blank=True)  # why it failed (shown on the page, escaped)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(default=timezone.now)  # last handed to the queue (a retry re-queues)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_pending(self) -> bool:
        return self.status in (MatrixStatus.PENDING, MatrixStatus.RUNNING)
