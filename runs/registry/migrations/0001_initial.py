import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0002_default_team"),
        ("runs", "0008_run_attempt_claim_enqueue"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="RegisteredModel",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200, unique=True)),
                ("source", models.CharField(max_length=500)),
                ("tokenizer", models.CharField(blank=True, max_length=500)),
                ("chat", models.BooleanField(default=False)),
                (
                    "dtype",
                    models.CharField(
                        choices=[("bf16", "bf16"), ("fp16", "fp16"), ("fp32", "fp32")],
                        default="bf16",
                        max_length=8,
                    ),
                ),
                ("pool", models.CharField(max_length=100)),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "Pending"), ("ready", "Ready"), ("refused", "Refused")],
                        db_index=True,
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("error", models.TextField(blank=True)),
                ("architecture", models.CharField(blank=True, max_length=200)),
                ("params", models.BigIntegerField(blank=True, null=True)),
                ("vocab_size", models.PositiveIntegerField(blank=True, null=True)),
                ("context_length", models.PositiveIntegerField(blank=True, null=True)),
                ("config_dtype", models.CharField(blank=True, max_length=32)),
                ("resolved_path", models.CharField(blank=True, max_length=1000)),
                ("inspected_by", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("inspected_at", models.DateTimeField(blank=True, null=True)),
                (
                    "from_run",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="exported_models",
                        to="runs.run",
                    ),
                ),
                (
                    "registered_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="registered_models",
                        to="accounts.team",
                    ),
                ),
            ],
            options={
                "ordering": ["name"],
            },
        ),
    ]
