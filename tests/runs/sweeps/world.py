"""A sweep of team alpha over the role matrices' world run (tests/controlplane/accounts/conftest.py), for
the "@sweep" of the page and API walks."""


def world_sweep(world) -> int:
    from runs.sweeps.models import Sweep, SweepRun

    sweep, _ = Sweep.objects.get_or_create(
        name="world-sweep",
        team=world.alpha,
        created_by=world.run.created_by,
        dataset_version=world.run.dataset_version,
        pool=world.run.pool,
        axes={"lr": [1e-5]},
    )
    SweepRun.objects.get_or_create(sweep=sweep, run=world.run, index=1, params={"lr": 1e-5})
    return sweep.pk
