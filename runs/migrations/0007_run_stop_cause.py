from django.db import migrations, models


def label_past_stops(apps, schema_editor):
    """Runs stopped before this field existed: learning stops said so in their message."""
    Run = apps.get_model("runs", "Run")
    stopped = Run.objects.filter(status="budget_stopped")
    stopped.filter(status_message__startswith="learning stalled").update(stop_cause="learning")
    stopped.exclude(status_message__startswith="learning stalled").update(stop_cause="budget")


class Migration(migrations.Migration):
    dependencies = [("runs", "0006_run_team_required")]

    operations = [
        migrations.AddField(
            model_name="run",
            name="stop_cause",
            field=models.CharField(
                blank=True, choices=[("budget", "Budget"), ("learning", "Learning")], max_length=16
            ),
        ),
        migrations.RunPython(label_past_stops, migrations.RunPython.noop),
    ]
