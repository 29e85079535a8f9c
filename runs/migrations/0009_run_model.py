import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("runs", "0008_run_attempt_claim_enqueue"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="model",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="runs",
                to="registry.registeredmodel",
            ),
        ),
    ]
