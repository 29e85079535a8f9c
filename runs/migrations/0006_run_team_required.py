import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Apart from 0005: on PostgreSQL, altering a table in the transaction that just updated its rows
    fails with pending trigger events."""

    dependencies = [("runs", "0005_run_team")]

    operations = [
        migrations.AlterField(
            model_name="run",
            name="team",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="runs", to="accounts.team"
            ),
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(fields=["team", "-created_at", "-id"], name="run_team_created"),
        ),
    ]
