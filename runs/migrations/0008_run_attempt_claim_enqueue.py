from django.db import migrations, models
from django.db.models import F


def runs_before_this_were_enqueued(apps, schema_editor):
    """Runs that exist already were handed to the broker the old way: never reap them as unenqueued."""
    Run = apps.get_model("runs", "Run")
    Run.objects.filter(enqueued_at__isnull=True).update(enqueued_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("runs", "0007_run_stop_cause"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="attempt",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="run",
            name="claimed_by",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="run",
            name="enqueued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(runs_before_this_were_enqueued, migrations.RunPython.noop),
    ]
