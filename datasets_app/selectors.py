from django.db.models import QuerySet

from datasets_app.models import Dataset, DatasetVersion


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.prefetch_related("versions")


def dataset_version_list() -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.select_related("dataset").order_by("dataset__name", "-number")
