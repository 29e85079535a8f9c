from django.conf import settings
from django.db import models


class DatasetFormat(models.TextChoices):
    HUMANEVAL = "humaneval", "HumanEval"
    MBPP = "mbpp", "MBPP"
    TRIAD = "triad", "Triad"
    CODECONTESTS = "codecontests", "CodeContests"
    APPS = "apps", "APPS"
    TACO = "taco", "TACO"
    LIVECODEBENCH = "livecodebench", "LiveCodeBench"
    GENERATED = "generated", "Generated"
    TRIAD_REPO = "triad-repo", "Repository tasks (Triad / SWE-bench JSONL)"


class ProblemKind(models.TextChoices):
    FUNCTION = "function", "Function"  # prompt + solution run against tests (check() or asserts)
    PROGRAM = "program", "Program"  # a whole program run once per case on stdin, stdout compared
    REPO = "repo", "Repository task"  # a repository snapshot, a statement, FAIL_TO_PASS / PASS_TO_PASS


class ProblemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    VERIFIED = "verified", "Verified"
    FAILING = "failing", "Failing"
    FLAKY = "flaky", "Flaky"
    WEAK_TESTS = "weak_tests", "Weak tests"


class Dataset(models.Model):
    """A named series of versions, owned by a team; `team` None is the shared read-only area (public
    sets such as HumanEval) that every user reads and only site admins change (docs/teams.md)."""

    name = models.CharField(max_length=200)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="datasets"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="dataset_team_name_unique"),
            # NULLs are distinct in the one above, so the shared area needs its own.
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(team__isnull=True), name="dataset_shared_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.team_id is None


class DatasetVersion(models.Model):
    """An immutable set of problems, identified by the SHA-256 of its canonical content."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    problem_count = models.PositiveIntegerField()
    source_filename = models.CharField(max_length=255, blank=True)
    format = models.CharField(max_length=16, choices=DatasetFormat.choices, default=DatasetFormat.HUMANEVAL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Verification's hand-over to the broker (docs/datasets.md, "Broker down"): when the broker took
    # every verification task (None: not yet, or it failed), and why it could not ("" when nothing failed).
    verify_enqueued_at = models.DateTimeField(null=True, blank=True)
    verify_error = models.TextField(blank=True)
    # Diversity and collapse (datasets_app/diversity.py): the measures of a sample, and what they flag
    # against the previous version. Filled by the analysis task after import; {} / [] until then.
    diversity = models.JSONField(default=dict, blank=True)
    diversity_flags = models.JSONField(default=list, blank=True)

    # Where a generated version came from (docs/datasets.md, "Generation jobs"): the version it extends
    # and {teacher base_url and model, prompt template version, params, job id, parent version}.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lineage = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset__name", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_unique"),
            models.UniqueConstraint(fields=["dataset", "content_hash"], name="dataset_version_hash_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]


class RepoSnapshot(models.Model):
    """A repository at a task's base commit: the gzip'd tar a repository task carries, stored once per
    content (sha256) and shared by every task of that repository state, whatever its version or team."""

    sha256 = models.CharField(max_length=64, unique=True)
    data = models.BinaryField()
    size_bytes = models.PositiveIntegerField()  # of the .tar.gz
    file_count = models.PositiveIntegerField()  # regular files in it
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"snapshot {self.sha256[:12]}"


class Problem(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="problems")
    index = models.PositiveIntegerField()
    task_id = models.CharField(max_length=200)
    prompt = models.TextField()
    entry_point = models.CharField(max_length=200)
    solution = models.TextField()
    tests = models.TextField()
    # A teacher's step-by-step trace towards the solution, when the dataset carries one.
    reasoning = models.TextField(blank=True, default="")
    stop = models.JSONField(default=list, blank=True)  # strings that end a model's answer (the dataset's)
    # The problem's own verifier, run instead of the run's reward_custom_source (docs/datasets.md).
    verifier = models.TextField(blank=True, default="")
    # Program problems (stdin/stdout, docs/datasets.md): `cases` are [{"input", "output"}] and replace
    # `tests`; `entry_point` and `tests` are "" and `solution` is the whole reference program.
    kind = models.CharField(max_length=16, choices=ProblemKind.choices, default=ProblemKind.FUNCTION)
    cases = models.JSONField(default=list, blank=True)
    compare = models.CharField(max_length=16, blank=True)  # exact | whitespace | float; "" = whitespace
    # Repository tasks (docs/datasets.md, "Repository tasks"): `prompt` is the statement, `solution` the
    # reference patch, `tests` the test patch, `entry_point` "", `source` the repository's name; the
    # test ids that must go from failing to passing and those that must keep passing, the test runner,
    # the repository at its base commit, and the gate's evidence.
    fail_to_pass = models.JSONField(default=list, blank=True)
    pass_to_pass = models.JSONField(default=list, blank=True)
    runner = models.CharField(max_length=16, blank=True)  # unittest | pytest
    snapshot = models.ForeignKey(
        RepoSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="problems"
    )
    repo_evidence = models.JSONField(default=dict, blank=True)
    difficulty = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=200, blank=True)
    # Identity and duplicates: sha256 of the canonical problem; sha1 of normalised prompt and solution.
    problem_hash = models.CharField(max_length=64, blank=True)
    prompt_hash = models.CharField(max_length=40, blank=True)
    solution_hash = models.CharField(max_length=40, blank=True)
    duplicate_of = models.CharField(max_length=200, blank=True, help_text="task_id of an exact duplicate")
    near_duplicate_of = models.CharField(max_length=200, blank=True)
    near_duplicate_score = models.FloatField(null=True, blank=True)
    contaminated_with = models.CharField(max_length=200, blank=True, help_text="HumanEval task_id")
    contamination_score = models.FloatField(null=True, blank=True)
    # Verification by execution.
    status = models.CharField(max_length=16, choices=ProblemStatus.choices, default=ProblemStatus.PENDING)
    error_class = models.CharField(max_length=32, blank=True)
    exception_type = models.CharField(max_length=200, blank=True)
    failing_test = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    tests_passed = models.PositiveIntegerField(null=True, blank=True)
    tests_total = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    cpu_ms = models.PositiveIntegerField(null=True, blank=True)  # the reference's CPU time when verified
    mutation_score = models.FloatField(null=True, blank=True)  # share of the reference's mutants killed
    verified_at = models.DateTimeField(null=True, blank=True)
    # Verdicts of people reviewing runs' generations on this problem: {"bad_test": 2, "flaky": 1}.
    # Kept up to date by the review app; the next version of the dataset can exclude or fix it.
    review_flags = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["version", "index"]
        constraints = [
            models.UniqueConstraint(fields=["version", "task_id"], name="problem_task_id_unique"),
        ]
        indexes = [models.Index(fields=["version", "status"], name="problem_version_status")]

    def __str__(self) -> str:
        return self.task_id


# --- Generation jobs (docs/datasets.md, "Generation jobs") ---------------------------------------------


class GenerationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    CANCELLING = "cancelling", "Cancelling"
    CANCELLED = "cancelled", "Cancelled"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    BUDGET_STOPPED = "budget_stopped", "Budget stopped"


GENERATION_ACTIVE = (GenerationStatus.QUEUED, GenerationStatus.RUNNING, GenerationStatus.CANCELLING)


class GenerationJob(models.Model):
    """A teacher model asked for problems, request after request, each candidate gated by execution, until
    `params["count"]` are accepted, the budget is spent or someone cancels; the accepted ones become one
    new version of `dataset`. The API key is stored encrypted (datasets_app/secrets.py) and shown only as
    `api_key_mask`."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="generation_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    parent_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    base_url = models.CharField(max_length=500)
    model = models.CharField(max_length=200)
    api_key_encrypted = models.TextField(blank=True)
    api_key_mask = models.CharField(max_length=40, blank=True)
    params = models.JSONField(default=dict)  # datasets_app/genjob_params.py, GenerationParams
    prompt_template = models.CharField(max_length=40)
    status = models.CharField(
        max_length=16, choices=GenerationStatus.choices, default=GenerationStatus.QUEUED
    )
    # Teacher requests whose reply is stored (or that failed for good): a request below this index is
    # never sent again; `request_started` is the index of the one in flight (a restart repeats it once).
    requests = models.PositiveIntegerField(default=0)
    request_started = models.PositiveIntegerField(null=True, blank=True)
    requests_failed = models.PositiveIntegerField(default=0)
    failures_in_a_row = models.PositiveIntegerField(default=0)
    generated = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected_by_reason = models.JSONField(default=dict, blank=True)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    usd = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    # The step that holds the job until then (a crashed worker's lease runs out and the reaper resumes it).
    lease_until = models.DateTimeField(null=True, blank=True)
    # A request's candidates were handed to the sandbox queue at this time (None: nothing is out there).
    sandbox_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_jobs"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"], name="genjob_status")]

    def __str__(self) -> str:
        return f"generation job {self.pk} of {self.dataset.name}"

    @property
    def is_active(self) -> bool:
        return self.status in GENERATION_ACTIVE

    @property
    def rejected(self) -> int:
        return sum(int(n) for n in (self.rejected_by_reason or {}).values())


class CandidateStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class GenerationCandidate(models.Model):
    """One problem a teacher reply held (or the text that could not be parsed), and the gate's verdict."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="candidates")
    request_index = models.PositiveIntegerField()
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=CandidateStatus.choices, default=CandidateStatus.PENDING)
    reason = models.CharField(max_length=32, blank=True)  # one of datasets_app.gate.REJECT_REASONS
    detail = models.TextField(blank=True)
    near = models.CharField(max_length=300, blank=True)  # the key of what it duplicates
    task_id = models.CharField(max_length=200, blank=True)
    problem = models.JSONField(null=True, blank=True)  # the parsed problem, Triad's JSONL fields
    raw = models.TextField(blank=True)  # what could not be parsed, capped
    # The gate's sandbox items for it (ids) and their results, stored by the sandbox task.
    item_ids = models.JSONField(default=list, blank=True)
    results = models.JSONField(null=True, blank=True)
    mutation_score = models.FloatField(null=True, blank=True)
    cpu_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "request_index", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "request_index", "index"], name="gencandidate_unique"),
        ]

    def __str__(self) -> str:
        return self.task_id or f"{self.job_id}/{self.request_index}/{self.index}"
