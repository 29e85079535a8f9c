"""Alert rules on runs, what they fired, who was told and how each delivery went (docs/alerts.md)."""

from django.conf import settings
from django.db import models

from datasets_app.models import DatasetVersion
from runs.models import Run, RunStatus


class Condition(models.TextChoices):
    ABOVE = "above", "rises above"
    BELOW = "below", "falls below"
    NAN = "nan", "is NaN or infinite"
    NO_DATA = "no_data", "has no new point for"
    STATE = "state", "run ends"
    # Not on a run: a version of one of the team's datasets flagged by its diversity measures.
    DIVERSITY = "diversity", "a dataset version loses diversity"


# The run states a state rule may watch: the ones nobody wants to find out about a day late.
WATCHED_STATES = (RunStatus.FAILED, RunStatus.LOST, RunStatus.BUDGET_STOPPED)
METRIC_CONDITIONS = (Condition.ABOVE, Condition.BELOW, Condition.NAN, Condition.NO_DATA)


class AlertRule(models.Model):
    """One rule: on one run (`run` set) or on every run of a team (`run` None)."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200, blank=True)
    condition = models.CharField(max_length=16, choices=Condition.choices)
    metric_key = models.CharField(max_length=100, blank=True)  # every condition but `state`
    threshold = models.FloatField(null=True, blank=True)  # above, below
    minutes = models.PositiveIntegerField(null=True, blank=True)  # no_data
    states = models.JSONField(default=list, blank=True)  # state: a subset of WATCHED_STATES
    # Channels besides the app (always): mail to these addresses, a signed POST to this URL.
    emails = models.JSONField(default=list, blank=True)
    webhook_url = models.CharField(max_length=500, blank=True)
    # Write-only: never rendered back (the page says only whether one is set).
    webhook_secret = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["team", "condition"], name="alert_rule_team_condition")]

    def __str__(self) -> str:
        return self.name or self.describe()

    def describe(self) -> str:
        """The rule in words: "reward/mean falls below 0.1", "run ends failed or lost"."""
        if self.condition in (Condition.ABOVE, Condition.BELOW):
            return f"{self.metric_key} {Condition(self.condition).label} {self.threshold:g}"
        if self.condition == Condition.NAN:
            return f"{self.metric_key} is NaN or infinite"
        if self.condition == Condition.NO_DATA:
            return f"{self.metric_key} has no new point for {self.minutes} min"
        if self.condition == Condition.DIVERSITY:
            return "a dataset version's diversity falls or its near-duplicates rise past the thresholds"
        labels = [str(RunStatus(s).label).lower() for s in self.states if s in RunStatus.values]
        return "run ends " + " or ".join(labels)

    @property
    def scope_label(self) -> str:
        if self.condition == Condition.DIVERSITY:
            return f"the datasets of team {self.team}"
        return f"run #{self.run_id}" if self.run_id else f"every run of team {self.team}"


class AlertRuleRun(models.Model):
    """A rule's state on one run: whether it is firing (it fires once per breach and re-arms when the
    condition clears) and how far the run's points have been evaluated."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    firing = models.BooleanField(default=False)
    checked_step = models.IntegerField(null=True, blank=True)  # metric rules: points up to here are seen

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "run"], name="alert_rule_run_unique")]


class AlertFiring(models.Model):
    """A breach: the rule fired on the run, at this step with this value (None: a state change or
    silence), and when it cleared (None: still firing, or a state change). A diversity rule's firing is on
    a dataset version instead of a run, once per version."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="firings")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    step = models.IntegerField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    message = models.TextField()
    fired_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at", "-pk"]
        indexes = [models.Index(fields=["rule", "-fired_at"], name="alert_firing_rule_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "dataset_version"],
                condition=models.Q(dataset_version__isnull=False),
                name="alert_firing_rule_version_once",
            )
        ]


class Notification(models.Model):
    """The in-app delivery of a firing: the bell's unread count is these, unread."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    firing = models.ForeignKey(AlertFiring, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_user_read")]


class Channel(models.TextChoices):
    MAIL = "mail"
    WEBHOOK = "webhook"


class Delivery(models.Model):
    """One attempt to deliver a firing by mail or webhook, as it went: shown on the rule's page."""

    firing = models.ForeignKey(AlertFiring, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=500)  # the addresses, or the URL
    attempt = models.PositiveIntegerField(default=1)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
