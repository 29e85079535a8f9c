from django.conf import settings
from django.db import models


class ModelStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # a node of the pool has not answered yet
    EXPORTING = "exporting", "Exporting"  # a node is writing it from a run's checkpoint (then pending)
    READY = "ready", "Ready"
    REFUSED = "refused", "Refused"


class ModelDtype(models.TextChoices):
    # The values are the spec's "model.dtype" (workers/spec.py's contract with the trainer).
    BF16 = "bf16", "bf16"
    FP16 = "fp16", "fp16"
    FP32 = "fp32", "fp32"


class RegisteredModel(models.Model):
    """A Hugging Face model that runs may start from: where a node of `pool` finds it, and what that
    node read from it. Owned by a team, like a dataset: its members read it, site admins read all."""

    name = models.CharField(max_length=200, unique=True)
    # A directory on the pool's nodes, or a hub id resolved from their local Hugging Face cache.
    source = models.CharField(max_length=500)
    tokenizer = models.CharField(max_length=500, blank=True)  # "" = the tokenizer shipped with `source`
    chat = models.BooleanField(default=False)  # an instruct model: prompts go through its chat template
    stop = models.JSONField(default=list, blank=True)  # extra stop strings of this model (the spec's)
    dtype = models.CharField(max_length=8, choices=ModelDtype.choices, default=ModelDtype.BF16)
    pool = models.CharField(max_length=100)
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="registered_models")
    status = models.CharField(
        max_length=16, choices=ModelStatus.choices, default=ModelStatus.PENDING, db_index=True
    )
    error = models.TextField(blank=True)  # why the node refused it, or why it could not be asked
    # What the node read (None until it answered).
    architecture = models.CharField(max_length=200, blank=True)
    params = models.BigIntegerField(null=True, blank=True)
    vocab_size = models.PositiveIntegerField(null=True, blank=True)
    context_length = models.PositiveIntegerField(null=True, blank=True)
    hidden_size = models.PositiveIntegerField(null=True, blank=True)
    num_layers = models.PositiveIntegerField(null=True, blank=True)
    config_dtype = models.CharField(max_length=32, blank=True)  # torch_dtype in its config.json
    resolved_path = models.CharField(max_length=1000, blank=True)  # on the node that inspected it
    inspected_by = models.CharField(max_length=200, blank=True)  # that node's name
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    inspected_at = models.DateTimeField(null=True, blank=True)
    # Lineage: the run whose checkpoint this model was exported from (None: it came from elsewhere).
    from_run = models.ForeignKey(
        "runs.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="exported_models"
    )
    from_step = models.PositiveIntegerField(null=True, blank=True)  # that run's checkpoint it came from

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def params_label(self) -> str:
        return params_label(self.params)


def params_label(params: int | None) -> str:
    """A parameter count as people say it: 1.2 B, 494 M, 130.5 K."""
    if params is None:
        return ""
    for size, unit in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if params >= size:
            value = params / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return str(params)
