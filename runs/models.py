from django.conf import settings
from django.db import models

from datasets_app.models import DatasetVersion
from workers.spec import RunState


class RunStatus(models.TextChoices):
    # The values are workers.spec.RunState's, which the launcher and the trainer report and obey.
    QUEUED = RunState.QUEUED.value, "Queued"
    STARTING = RunState.STARTING.value, "Starting"
    RUNNING = RunState.RUNNING.value, "Running"
    CANCELLING = RunState.CANCELLING.value, "Cancelling"
    SUCCEEDED = RunState.SUCCEEDED.value, "Succeeded"
    FAILED = RunState.FAILED.value, "Failed"
    CANCELLED = RunState.CANCELLED.value, "Cancelled"
    BUDGET_STOPPED = RunState.BUDGET_STOPPED.value, "Budget Stopped"
    LOST = RunState.LOST.value, "Lost"


class StopCause(models.TextChoices):
    """Why a run is `budget_stopped`: the state the launcher obeys is the same for both (checkpoint and
    stop), but people want to know whether money ran out or learning did (docs/spend.md)."""

    BUDGET = "budget"
    LEARNING = "learning"


TERMINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.BUDGET_STOPPED, RunStatus.LOST}
)
ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING})


class Node(models.Model):
    """A GPU (or CPU) node: a Celery worker on a `gpu.<pool>` queue, registered when it starts."""

    name = models.CharField(max_length=200, unique=True)  # the Celery node name, e.g. gpu@host-17
    hostname = models.CharField(max_length=200)
    pool = models.CharField(max_length=100)
    gpu_type = models.CharField(max_length=100, default="cpu")
    gpu_count = models.PositiveIntegerField(default=0)
    # What a run's resources are checked against (runs/resources.py), as the node announced them.
    gpu_memory_gb = models.FloatField(null=True, blank=True)  # per GPU
    compute_capability = models.CharField(max_length=16, blank=True)  # "8.0"; "" on a CPU node
    cpu_count = models.PositiveIntegerField(null=True, blank=True)
    address = models.CharField(max_length=200, blank=True)  # where the pool's other nodes reach it
    usd_per_gpu_hour = models.FloatField(null=True, blank=True)  # overrides the pool's price
    registered_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField()

    class Meta:
        ordering = ["pool", "name"]

    def __str__(self) -> str:
        return self.name


class Run(models.Model):
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runs")
    # Who may see and act on the run: the members of this team (docs/teams.md).
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="runs")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    status_message = models.TextField(blank=True)
    stop_cause = models.CharField(max_length=16, choices=StopCause.choices, blank=True)  # budget_stopped only
    config = models.JSONField(default=dict)
    pool = models.CharField(max_length=100, default="cpu")
    # SHA-256 of the run's bearer token: the token itself is shown once and never stored.
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_step = models.IntegerField(null=True, blank=True)
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    # Each launch or resume is a new attempt; a launcher claims one attempt once (docs/runs.md).
    attempt = models.PositiveIntegerField(default=1)
    # Who holds the current attempt's claim: the launcher's claim key ("" while nobody does).
    claimed_by = models.CharField(max_length=200, blank=True)
    # When the broker took the attempt's start task; None while that has not happened (yet).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # The registered model the run starts from; None is the built-in tiny model (docs/models.md).
    # The checkpoints its trainer keeps, as it last reported them (retention, docs/runs.md): {"kept":
    # [{"attempt", "step", "tag", "bytes", "why": ["last", "best"], "metric"}], "used_bytes", ...}.
    checkpoints = models.JSONField(default=dict, blank=True)
    model = models.ForeignKey(
        "registry.RegisteredModel", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    # An external run's trainer is not launched by Triad (docs/external-runs.md): it is never queued to a
    # node, goes to running on its first event, and is reaped as lost after its own heartbeat timeout
    # (None: TRIAD_LOST_AFTER_S, as every other run).
    external = models.BooleanField(default=False)
    heartbeat_timeout_s = models.PositiveIntegerField(null=True, blank=True)
    # A free-text note in Markdown, rendered sanitized on the run page (docs/runs.md, "Organizing runs").
    note = models.TextField(blank=True)
    # An archived run is hidden from the runs list unless asked for; nothing else about it changes.
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        # The runs list of a team's members: newest first, read a page at a time.
        indexes = [models.Index(fields=["team", "-created_at", "-id"], name="run_team_created")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def status_label(self) -> str:
        return status_label(self.status, self.stop_cause)


def status_label(status: str, stop_cause: str = "") -> str:
    """What a person reads for a status: a stop on a learning signal is not a budget stop."""
    if status == RunStatus.BUDGET_STOPPED and stop_cause == StopCause.LEARNING:
        return "Stopped: not learning"
    return str(RunStatus(status).label) if status in RunStatus.values else status


class RunTag(models.Model):
    """One tag of a run: a table, not a JSON list, so the runs list filters by tag on every database."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="run_tag_unique")]
        indexes = [models.Index(fields=["name"], name="run_tag_name")]

    def __str__(self) -> str:
        return self.name


class RunMetricKey(models.Model):
    """The metric keys a run has logged, with the furthest step of each: the metric picker's list. Kept
    at ingest (runs/metric_store.py), because a DISTINCT over the points reads every point of the run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_keys")
    key = models.CharField(max_length=100)
    last_step = models.IntegerField()

    class Meta:
        ordering = ["run", "key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="run_metric_key_unique")]


class ChartLayout(models.Model):
    """A user's chart layout of one page ("run", "compare"): which panels, in what order, and the
    chart settings (smoothing, log scale, x axis), as the page's script saves it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    page = models.CharField(max_length=64)
    layout = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "page"], name="chart_layout_unique")]


class NodeSample(models.Model):
    """A node's system metrics at one time, as its heartbeat carried them: CPU and memory always, and per
    GPU (where NVML answers) its utilisation, memory and temperature."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="samples")
    time = models.DateTimeField()
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_percent = models.FloatField(null=True, blank=True)
    memory_used_gb = models.FloatField(null=True, blank=True)
    # [{"index": 0, "util_percent": 97.0, "memory_used_gb": 61.2, "memory_total_gb": 80.0,
    #   "temperature_c": 71.0}, ...]; [] on a node without NVML.
    gpus = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["node", "time"]
        indexes = [models.Index(fields=["node", "time"], name="node_sample_node_time")]


class IngestedEvent(models.Model):
    """One row per accepted (run, attempt, source, seq): the idempotency key of the ingest API. Keyed by
    attempt because a resumed attempt on another node starts its sequence at 0 again (a fresh spool)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    attempt = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=32)
    seq = models.BigIntegerField()
    type = models.CharField(max_length=16)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "attempt", "source", "seq"], name="ingested_event_attempt_unique"
            ),
        ]


class MetricPoint(models.Model):
    """A narrow table: one value of one metric at one step. One point per (run, key, step), the latest
    written replacing an earlier one (a resumed attempt re-runs steps): runs/metric_store.py keeps it
    under the run's row lock, not a unique constraint, which COPY could not write through."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points")
    key = models.CharField(max_length=100)
    step = models.IntegerField()
    value = models.FloatField()
    wall_time = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["run", "key", "step"], name="metric_run_key_step")]


class MetricRollup(models.Model):
    """Per (run, key, bucket of `width` steps): count, extremes with their steps, first and last point.

    Kept up to date at ingest for a few widths, so a chart of a million-point series reads a few
    thousand rows instead of the series, and spikes (min, max) survive every zoom level.
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    width = models.IntegerField()
    bucket = models.IntegerField()
    n = models.IntegerField()
    min_value = models.FloatField()
    min_step = models.IntegerField()
    max_value = models.FloatField()
    max_step = models.IntegerField()
    first_step = models.IntegerField()
    first_value = models.FloatField()
    last_step = models.IntegerField()
    last_value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "key", "width", "bucket"], name="metric_rollup_unique"),
        ]


class Generation(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="generations")
    step = models.IntegerField()
    problem_id = models.CharField(max_length=200)
    completion = models.TextField()
    reward = models.FloatField()
    passed = models.BooleanField()
    error_class = models.CharField(max_length=32)
    tests_passed = models.IntegerField(default=0)
    tests_total = models.IntegerField(default=0)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    duration_ms = models.IntegerField(default=0)
    # A program problem's cases, as the trainer posts them (the first 20 and the first failing one):
    # [{"index", "outcome", "duration_ms", "input", "expected", "actual", "stderr"}]; [] for functions.
    cases = models.JSONField(default=list, blank=True)
    # A repository episode's outcome (workers.spec.REPO_OUTCOMES; "" for other kinds) and its "repo"
    # object as ingest capped it (runs/events.py): trajectory, final diff, test tables. None otherwise.
    outcome = models.CharField(max_length=32, blank=True, default="")
    repo = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-step", "pk"]
        indexes = [
            models.Index(fields=["run", "step"], name="generation_run_step"),
            # The same problem across a run (solve rate over steps, compare links).
            models.Index(fields=["run", "problem_id", "step"], name="generation_run_problem_step"),
            # A run's episodes by outcome (the review's outcome filter and counts, the resolve rate).
            models.Index(fields=["run", "outcome"], name="generation_run_outcome"),
        ]


class LogLine(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines")
    source = models.CharField(max_length=32)
    level = models.CharField(max_length=16, default="info")
    message = models.TextField()
    time = models.DateTimeField()

    class Meta:
        ordering = ["pk"]
        # The page's tail and the live feed read one run's lines by pk: without this, a run of millions
        # of lines sorts all of them for the last 50.
        indexes = [models.Index(fields=["run", "id"], name="logline_run_id")]


class RunAttempt(models.Model):
    """What produced one attempt of a run (docs/runs.md, "Provenance"): the node that claimed it and
    what that node ran with, as its launcher reported it in the claim, and the spec it was served."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="attempts")
    attempt = models.PositiveIntegerField()
    claimed_by = models.CharField(max_length=200, blank=True)  # the claim key that won ("" until then)
    node = models.CharField(max_length=200, blank=True)  # the host the launcher said it ran on
    claimed_at = models.DateTimeField(null=True, blank=True)
    # As the launcher sent it (workers/provenance.py); None: a launcher that sends none.
    provenance = models.JSONField(null=True, blank=True)
    # The resolved spec served to the attempt's node, whole (the first one served: GET spec).
    spec = models.JSONField(null=True, blank=True)
    spec_served_at = models.DateTimeField(null=True, blank=True)
    # The gang that ran it, in node-rank order, once it formed: [{"node", "node_rank", "address",
    # "ranks"}, ...] (runs/gang.py).
    nodes = models.JSONField(default=list, blank=True)
    # The first and the furthest metric step it reported (ingest), and how it ended: the status it
    # ended in and its message, when the run ended or was resumed past it.
    first_step = models.IntegerField(null=True, blank=True)
    last_step = models.IntegerField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_status = models.CharField(max_length=20, blank=True)
    end_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "attempt"]
        constraints = [models.UniqueConstraint(fields=["run", "attempt"], name="run_attempt_unique")]

    def __str__(self) -> str:
        return f"run #{self.run_id} attempt {self.attempt}"


class RunClaim(models.Model):
    """One node's claim on an attempt of a run (runs/gang.py): a run with `nodes: N` starts when N nodes
    of its pool hold a claim on its current attempt, one each. Node ranks go by order of claim."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="claims")
    attempt = models.PositiveIntegerField()
    node = models.CharField(max_length=200)  # the claiming worker's node name (its host, if it sent none)
    key = models.CharField(max_length=200)  # the launcher's claim key (workers.launcher.claim_key)
    node_rank = models.PositiveIntegerField()
    address = models.CharField(max_length=200, blank=True)  # where the gang's other nodes reach it
    port = models.PositiveIntegerField(null=True, blank=True)  # a free port there (rank 0's: the master's)
    ranks = models.PositiveIntegerField(default=1)  # the trainer processes it starts (resolved there)
    devices = models.JSONField(default=list, blank=True)  # the GPU ids it starts them on; [] on CPU
    provenance = models.JSONField(null=True, blank=True)
    claimed_at = models.DateTimeField()
    # Refreshed by the claim's polls while the gang forms, then by the node's launcher heartbeats.
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["run", "attempt", "node_rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "attempt", "node"], name="run_claim_node_unique"),
            models.UniqueConstraint(fields=["run", "attempt", "node_rank"], name="run_claim_rank_unique"),
        ]

    def __str__(self) -> str:
        return f"run #{self.run_id} attempt {self.attempt} node {self.node} (rank {self.node_rank})"
