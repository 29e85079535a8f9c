"""Data from before teams existed keeps working: its users and runs land in the "default" team."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from controlplane.accounts.models import Membership, Role
from runs.models import Run


@pytest.mark.django_db(transaction=True)
def test_existing_users_and_runs_join_the_default_team_staff_as_admins():
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", None)])  # back to before teams (and what depends on them)
    executor = MigrationExecutor(connection)
    old = executor.loader.project_state(list(executor.loader.applied_migrations)).apps
    User = old.get_model("auth", "User")
    staff = User.objects.create(username="old-staff", is_staff=True)
    plain = User.objects.create(username="old-user")
    dataset = old.get_model("datasets_app", "Dataset").objects.create(name="old", created_by=plain)
    version = old.get_model("datasets_app", "DatasetVersion").objects.create(
        dataset=dataset, number=1, content_hash="0" * 64, problem_count=0, created_by=plain
    )
    old_run = old.get_model("runs", "Run").objects.create(
        name="before-teams", created_by=plain, dataset_version=version, token_hash="0" * 64
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert Run.objects.get(pk=old_run.pk).team.name == "default"
    roles = dict(Membership.objects.filter(team__name="default").values_list("user__username", "role"))
    assert roles == {staff.username: Role.ADMIN, plain.username: Role.MEMBER}
