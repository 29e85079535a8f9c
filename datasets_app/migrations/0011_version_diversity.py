from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets_app", "0010_problem_kind"),
    ]

    operations = [
        migrations.AddField(
            model_name="datasetversion",
            name="diversity",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="datasetversion",
            name="diversity_flags",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
