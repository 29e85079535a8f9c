"""The sweep pages: list (empty state), new (preview and launch), detail (runs, best, plot data, compare
link, halving record), stop (members only), and the run page's link back to its sweep."""

import json
from decimal import Decimal

import pytest
from django.test import Client

from runs.models import Run, RunMetricKey, RunStatus
from runs.spend.models import TeamMonthlyBudget
from runs.sweeps.document import sweep_document_from
from runs.sweeps.models import Sweep, SweepStatus
from runs.sweeps.services import sweep_halve, sweep_launch
from tests.factories import MetricPointFactory, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(version, **over):
    return {
        "name": "grid",
        "dataset_version": version.pk,
        "method": "grid",
        "config_yaml": "steps: 3\n",
        "axes_yaml": "lr: [1.0e-5, 3.0e-5]\ngroup_size: [4, 8]\n",
        "halving_fraction": "0.5",
        "halving_metric": "pass_rate",
        "halving_goal": "max",
        **over,
    }


def launched(member, version, **over):
    values = {"name": "grid", "dataset_version": version.pk, "axes": {"lr": [1e-5, 3e-5]}, **over}
    return sweep_launch(user=member, document=sweep_document_from(values)).sweep


def test_the_sweeps_page_has_an_empty_state_then_lists_the_teams_sweeps(member, version):
    client = client_for(member)
    page = client.get("/sweeps/")
    assert page.status_code == 200 and b'data-testid="sweeps-empty"' in page.content

    launched(member, version)
    page = client.get("/sweeps/")
    assert b"sweeps-empty" not in page.content and b">grid</a>" in page.content
    other = UserFactory(username="otto", password=None, membership__team__name="beta")
    assert b">grid</a>" not in client_for(other).get("/sweeps/").content


def test_the_preview_shows_the_expanded_runs_and_their_total_estimate(member, version):
    preview = client_for(member).post(
        "/sweeps/new/", form_data(version), headers={"HX-Request": "true", "HX-Target": "sweep-preview"}
    )

    assert preview.status_code == 200
    text = preview.content.decode()
    assert "<form" not in text  # the partial alone
    assert (
        'data-testid="preview-count">4 runs' in text
        and "grid-4" in text
        and 'data-testid="preview-total">$' in text
    )
    assert not Run.objects.exists()


def test_the_preview_says_what_is_wrong_naming_the_axis(member, version):
    preview = client_for(member).post(
        "/sweeps/new/",
        form_data(version, axes_yaml="lr: [fast]\n"),
        headers={"HX-Request": "true", "HX-Target": "sweep-preview"},
    )

    assert "axes.lr: value &#x27;fast&#x27;" in preview.content.decode()


def test_launching_from_the_form_queues_the_runs_and_opens_the_sweep(member, version):
    response = client_for(member).post("/sweeps/new/", form_data(version))

    sweep = Sweep.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/sweeps/{sweep.pk}/"
    assert sorted(Run.objects.values_list("name", flat=True)) == ["grid-1", "grid-2", "grid-3", "grid-4"]


def test_a_bad_axis_is_shown_on_the_axes_box_and_launches_nothing(member, version):
    response = client_for(member).post("/sweeps/new/", form_data(version, axes_yaml="group_size: [4, 0]\n"))

    assert response.status_code == 400
    assert 'data-testid="error-axes_yaml">Axes (YAML): axes.group_size: value 0' in response.content.decode()
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_the_sweep_page_shows_runs_params_best_run_plot_and_compare_link(member, version):
    sweep = launched(member, version, axes={"lr": [1e-5, 3e-5], "group_size": [4, 8]})
    runs = [m.run for m in sweep.sweep_runs.select_related("run")]
    for run, values in zip(runs, ([0.1, 0.3], [0.2, 0.6, 0.5], [0.4], []), strict=True):
        for step, value in enumerate(values):
            MetricPointFactory(run=run, key="pass_rate", step=step, value=value)
        if values:
            RunMetricKey.objects.create(run=run, key="pass_rate", last_step=len(values) - 1)

    page = client_for(member).get(f"/sweeps/{sweep.pk}/")

    text = page.content.decode()
    ids = ",".join(str(r.pk) for r in runs)
    assert f'href="/runs/compare/?runs={ids}"' in text
    assert f'<tr data-run="{runs[1].pk}" class="sweep-best" data-best="true">' in text
    assert "best pass rate 0.600, final 0.500" in text
    plot = json.loads(text.split('id="sweep-plot-data" type="application/json">')[1].split("</script>")[0])
    assert plot["axes"] == ["lr", "group_size", "best pass_rate", "final pass_rate"]
    assert [r["values"] for r in plot["runs"]] == [
        [1e-5, 4, 0.3, 0.3],
        [1e-5, 8, 0.6, 0.5],
        [3e-5, 4, 0.4, 0.4],
        [3e-5, 8, None, None],
    ]
    assert [r["best"] for r in plot["runs"]] == [False, True, False, False]


def test_the_run_page_links_back_to_its_sweep(member, version):
    sweep = launched(member, version)
    run = sweep.sweep_runs.first().run

    page = client_for(member).get(f"/runs/{run.pk}/")

    assert f'data-testid="run-sweep">Sweep <a href="/sweeps/{sweep.pk}/">grid</a>' in page.content.decode()


def test_a_viewer_sees_the_sweep_without_stop_and_may_not_stop_it(member, version, team):
    sweep = launched(member, version)
    viewer = client_for(
        UserFactory(username="vic", password=None, membership__team=team, membership__role="viewer")
    )

    assert b"sweep-stop" not in viewer.get(f"/sweeps/{sweep.pk}/").content
    assert viewer.post(f"/sweeps/{sweep.pk}/stop/").status_code == 403
    assert b"sweep-stop" in client_for(member).get(f"/sweeps/{sweep.pk}/").content
    outsider = client_for(UserFactory(username="otto", password=None, membership__team__name="beta"))
    assert outsider.get(f"/sweeps/{sweep.pk}/").status_code == 404


def test_stop_sweep_cancels_its_runs(member, version):
    sweep = launched(member, version)

    response = client_for(member).post(f"/sweeps/{sweep.pk}/stop/", follow=True)

    assert "Sweep grid stopped: 2 active run(s) cancelled." in response.content.decode()
    assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.CANCELLED}
    assert Sweep.objects.get().status == SweepStatus.STOPPED


def test_untrusted_swept_text_is_escaped_on_the_page_and_in_the_plot_data(member, version):
    sources = [
        "def reward(candidate, problem):\n    return 1.0  # <img src=x onerror=alert(1)>\n",
        "def reward(candidate, problem):\n    return 0.5  # </script><script>alert(2)</script>\n",
    ]
    sweep = launched(member, version, config={"reward_custom": 1.0}, axes={"reward_custom_source": sources})

    text = client_for(member).get(f"/sweeps/{sweep.pk}/").content.decode()

    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "</script><script>alert(2)" not in text
    assert "\\u003C/script\\u003E\\u003Cscript\\u003Ealert(2)" in text  # json_script's escaping


def test_the_runs_part_refreshes_alone_with_the_plot_data(member, version):
    sweep = launched(member, version)

    part = client_for(member).get(
        f"/sweeps/{sweep.pk}/", headers={"HX-Request": "true", "HX-Target": "sweep-runs"}
    )

    text = part.content.decode()
    assert text.lstrip().startswith('<section class="card" id="sweep-runs"') and "<h1>" not in text
    assert 'id="sweep-plot-data"' in text and 'hx-trigger="every 5s"' in text


def test_the_preview_warns_of_a_sweep_over_the_budget_before_launch(member, version, team):
    TeamMonthlyBudget.objects.create(team=team, usd_per_month=Decimal("0.01"))

    preview = client_for(member).post(
        "/sweeps/new/",
        form_data(version, config_yaml="steps: 1000\n"),
        headers={"HX-Request": "true", "HX-Target": "sweep-preview"},
    )

    text = preview.content.decode()
    assert 'data-testid="preview-count">4 runs' in text
    assert "Launching would be refused: this sweep of 4 runs is estimated at $" in text
    assert "only $0.01 of team ml&#x27;s $0.01 monthly budget is left" in text


def test_the_sweep_page_shows_which_runs_halving_stopped_and_why(member, version):
    sweep = launched(member, version, config={"steps": 4}, halving={"step": 1, "fraction": 0.5})
    runs = [m.run for m in sweep.sweep_runs.select_related("run")]
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(status=RunStatus.RUNNING)
    for run, value in zip(runs, (0.25, 0.75), strict=True):
        for step in (0, 1):
            MetricPointFactory(run=run, key="pass_rate", step=step, value=value)
        RunMetricKey.objects.create(run=run, key="pass_rate", last_step=1)
    page = client_for(member).get(f"/sweeps/{sweep.pk}/").content.decode()
    assert "No rung judged yet" in page

    assert sweep_halve(sweep_id=sweep.pk) == [runs[0].pk]

    page = client_for(member).get(f"/sweeps/{sweep.pk}/").content.decode()
    assert "the bottom 50% of the runs by pass_rate (higher is better) are cancelled" in page
    assert "Step 1: 2 runs compared by pass_rate" in page
    assert f'stopped <a href="/runs/{runs[0].pk}/">grid-1</a> (0.2500)' in page
    assert (
        'data-testid="halted">stopped by successive halving at step 1: pass_rate 0.25 was in the bottom 50% '
        "of the 2 runs of sweep grid</small>"
    ) in page
