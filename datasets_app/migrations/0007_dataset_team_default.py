from django.db import migrations


def to_default_team(apps, schema_editor):
    """Datasets from before teams had no owner: they go to the "default" team, where every existing user
    is (accounts.0002_default_team), so nobody loses access; an admin moves them on with
    `manage.py move_dataset` (docs/teams.md). None becomes shared: that is a site admin's choice."""
    Dataset = apps.get_model("datasets_app", "Dataset")
    Team = apps.get_model("accounts", "Team")
    if not Dataset.objects.filter(team__isnull=True).exists():
        return
    team, _ = Team.objects.get_or_create(name="default")
    Dataset.objects.filter(team__isnull=True).update(team=team)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_default_team"),
        ("datasets_app", "0006_dataset_team"),
    ]

    operations = [migrations.RunPython(to_default_team, migrations.RunPython.noop)]
