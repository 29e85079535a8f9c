from decimal import Decimal

from django.db import migrations


def seed(apps, schema_editor):
    GpuPrice = apps.get_model("spend", "GpuPrice")
    # The default pool trains on CPU processes; price one process-hour like a small cloud vCPU pair.
    GpuPrice.objects.get_or_create(
        pool="cpu", defaults={"gpu_type": "cpu", "usd_per_gpu_hour": Decimal("0.10")}
    )


def unseed(apps, schema_editor):
    apps.get_model("spend", "GpuPrice").objects.filter(pool="cpu").delete()


class Migration(migrations.Migration):
    dependencies = [("spend", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
