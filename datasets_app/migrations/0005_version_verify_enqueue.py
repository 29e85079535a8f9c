from django.db import migrations, models
from django.db.models import F


def versions_before_this_were_enqueued(apps, schema_editor):
    """Versions that exist already were handed to the broker the old way: never reap them as unenqueued."""
    DatasetVersion = apps.get_model("datasets_app", "DatasetVersion")
    DatasetVersion.objects.filter(verify_enqueued_at__isnull=True).update(verify_enqueued_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("datasets_app", "0004_problem_reasoning"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="verify_enqueued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="datasetversion",
            name="verify_error",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(versions_before_this_were_enqueued, migrations.RunPython.noop),
    ]
