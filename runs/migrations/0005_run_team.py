import django.db.models.deletion
from django.db import migrations, models


def to_default_team(apps, schema_editor):
    """Every existing run belongs to the "default" team, where the accounts migration put every user."""
    Team = apps.get_model("accounts", "Team")
    Run = apps.get_model("runs", "Run")
    team, _ = Team.objects.get_or_create(name="default")
    Run.objects.filter(team__isnull=True).update(team=team)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_default_team"),
        ("runs", "0004_generation_problem_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="team",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="runs",
                to="accounts.team",
            ),
        ),
        migrations.RunPython(to_default_team, migrations.RunPython.noop),
    ]
