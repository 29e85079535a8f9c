from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="registeredmodel",
            name="stop",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
