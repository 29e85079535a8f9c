"""`triad sweeps create --file`, `show`, `ls` and `stop` against the real server."""

import json

from tests.triad_cli.conftest import no_traceback


def test_create_show_and_stop_a_sweep_from_a_yaml_file(world, triad):
    (triad.home / "sweep.yaml").write_text(
        f"name: cli-grid\ndataset_version: {world.version.pk}\nconfig:\n  steps: 2\n"
        "axes:\n  group_size: [2, 4]\n"
    )

    created = triad("sweeps", "create", "--file", "sweep.yaml", "--json")
    assert created.returncode == 0, created.stderr
    sweep = json.loads(created.stdout)
    assert [r["name"] for r in sweep["runs"]] == ["cli-grid-1", "cli-grid-2"]

    shown = triad("sweeps", "show", str(sweep["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "cli-grid-2" in shown.stdout and "group_size=4" in shown.stdout
    assert "cli-grid" in triad("sweeps", "ls").stdout

    stopped = triad("sweeps", "stop", str(sweep["id"]))
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith(f'stopped sweep {sweep["id"]} "cli-grid": 2 runs, Stopped')


def test_a_sweep_the_server_refuses_names_the_axis(world, triad):
    (triad.home / "bad.yaml").write_text(
        f"name: bad\ndataset_version: {world.version.pk}\naxes:\n  group_size: [2, 0]\n"
    )

    done = triad("sweeps", "create", "--file", "bad.yaml")

    assert done.returncode == 1
    no_traceback(done)
    assert "axes.group_size: value 0" in done.stderr and "(field: axes.group_size)" in done.stderr
