"""Every page, partial and API a browser uses, for every role, against a run of team alpha.

Roles: an admin, a member and a viewer of alpha; the outsider (an admin of team beta); the loner (logged
in, in no team); a superuser. Another team's run does not exist for a user (404); a role too low to act
gets 403; the ingest API (run tokens) is machine auth and not part of this.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from runs.models import LogLine, Run, RunStatus
from runs.spend.models import MonthlyBudget, TeamMonthlyBudget
from tests.controlplane.accounts.conftest import ROLES
from tests.datasets_app.genjobs_world import world_generation_job
from tests.runs.sweeps.world import world_sweep

ADMIN, MEMBER, VIEWER, OUTSIDER, LONER, SUPER = range(6)

# (method, url name, kwargs from the world, query or form data, expected status per role in ROLES order);
# the method "htmx#<id>" asks for the partial of the element with that id, as htmx does
TABLE = [
    # runs
    ("get", "runs:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "runs:launch", {}, {}, (200, 200, 403, 200, 403, 200)),
    ("get", "runs:launch", {}, {"clone": "@run"}, (200, 200, 403, 404, 403, 200)),
    ("get", "runs:detail", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("htmx#run-status", "runs:detail", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("htmx#generations", "runs:detail", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "runs:metrics", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "runs:metric-keys", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "runs:system", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "runs:log-download", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    # a user's own chart layout: everyone logged in has one (empty until saved)
    ("get", "runs:chart-layout", {"page": "run"}, {}, (200, 200, 200, 200, 200, 200)),
    # nodes are every team's; the world has none, so a node's pages are 404 for all (tests/runs/
    # test_node_samples.py has the 200s)
    ("get", "runs:node", {"name": "no-such-node"}, {}, (404, 404, 404, 404, 404, 404)),
    ("get", "runs:node-samples", {"name": "no-such-node"}, {}, (404, 404, 404, 404, 404, 404)),
    ("get", "runs:compare", {}, {"ids": "@run"}, (200, 200, 200, 404, 404, 200)),
    # the picker lists only the user's runs; the compare JSON reads leave out the runs one may not see
    ("get", "runs:compare", {}, {}, (200,) * 6),
    ("htmx#picker-rows", "runs:compare", {}, {"pick": "1", "q": "a"}, (200,) * 6),
    ("get", "runs:compare-metrics", {}, {"runs": "@run"}, (200,) * 6),
    ("get", "runs:compare-keys", {}, {"runs": "@run"}, (200,) * 6),
    ("post", "runs:cancel", {"run_id": "@run"}, {}, (302, 302, 403, 404, 404, 302)),
    ("post", "runs:resume", {"run_id": "@run"}, {}, (302, 302, 403, 404, 404, 302)),
    ("get", "runs:attempt-spec", {"run_id": "@run", "attempt": 1}, {}, (200, 200, 200, 404, 404, 200)),
    ("post", "runs:rerun", {"run_id": "@run", "attempt": 1}, {}, (302, 302, 403, 404, 404, 302)),
    # organizing (runs/organize_views.py): members act, viewers read; only admins delete (the world's
    # run is running: refused with a message on the page, a redirect)
    ("get", "runs:progress", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("post", "runs:rename", {"run_id": "@run"}, {"name": "renamed"}, (302, 302, 403, 404, 404, 302)),
    ("post", "runs:tags", {"run_id": "@run"}, {"tags": "kl"}, (302, 302, 403, 404, 404, 302)),
    ("post", "runs:note", {"run_id": "@run"}, {"note": "*n*"}, (302, 302, 403, 404, 404, 302)),
    ("post", "runs:archive", {"run_id": "@run"}, {"archived": "1"}, (302, 302, 403, 404, 404, 302)),
    ("post", "runs:delete", {"run_id": "@run"}, {}, (302, 403, 403, 404, 404, 302)),
    ("get", "runs:nodes", {}, {}, (200, 200, 200, 200, 200, 200)),
    # the queues show every team's runs in place, another team's without a name (docs/runs.md)
    ("get", "runs:queue-list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "runs:queue", {"pool": "cpu"}, {}, (200, 200, 200, 200, 200, 200)),
    # review
    ("get", "review:run", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("htmx#review-rows", "review:run", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "review:problems", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "review:export", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "review:generation", {"generation_id": "@generation"}, {}, (200, 200, 200, 404, 404, 200)),
    (
        "post",
        "review:label",
        {"generation_id": "@generation"},
        {"label": "model_wrong"},
        (200, 200, 403, 404, 404, 200),
    ),
    ("post", "review:undo", {"generation_id": "@generation"}, {}, (200, 200, 403, 404, 404, 200)),
    (
        "post",
        "review:comment",
        {"generation_id": "@generation"},
        {"comment": "hm"},
        (200, 200, 403, 404, 404, 200),
    ),
    # two generations of different problems: the page says so without running any code
    (
        "get",
        "review:compare",
        {},
        {"a": "@generation", "b": "@other_generation"},
        (200, 200, 200, 404, 404, 200),
    ),
    # the user's own page: everyone has one; a token is revoked only by its owner
    ("get", "accounts:account", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("post", "accounts:account", {}, {"name": "cli", "scope": "read", "expires": "30"}, (200,) * 6),
    ("post", "accounts:token-revoke", {"token_id": "@token"}, {}, (302, 404, 404, 404, 404, 404)),
    # spend
    ("get", "spend:dashboard", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "spend:csv", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "spend:estimate", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "spend:run-cost", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "spend:prices", {}, {}, (200, 403, 403, 200, 403, 200)),
    (
        "post",
        "spend:prices",
        {},
        {"pool": "h100", "gpu_type": "H100", "usd_per_gpu_hour": "3"},
        (403, 403, 403, 403, 403, 302),  # prices bill every team: site admins set them
    ),
    (
        "post",
        "spend:budget-set",
        {},
        {"user": "@member", "usd_per_month": "5"},
        (302, 403, 403, 302, 403, 302),
    ),
    (
        "post",
        "spend:team-budget-set",
        {},
        {"team": "@alpha", "usd_per_month": "5"},
        (302, 403, 403, 302, 403, 302),
    ),
    ("post", "spend:node-price-set", {}, {}, (403, 403, 403, 403, 403, 302)),
    # teams and the audit log
    ("get", "accounts:teams", {}, {}, (200, 403, 403, 200, 403, 200)),
    ("get", "accounts:team", {"team_id": "@alpha"}, {}, (200, 403, 403, 404, 404, 200)),
    (
        "post",
        "accounts:team",
        {"team_id": "@alpha"},
        {"username": "lou", "role": "viewer"},
        (302, 403, 403, 404, 404, 302),
    ),
    (
        "post",
        "accounts:team-remove",
        {"team_id": "@alpha"},
        {"user": "@viewer"},
        (302, 403, 403, 404, 404, 302),
    ),
    (
        "post",
        "accounts:team-invite",
        {"team_id": "@alpha"},
        {"email": "new@example.com", "role": "viewer"},
        (302, 403, 403, 404, 404, 302),
    ),
    ("post", "accounts:team-create", {}, {"name": "gamma"}, (403, 403, 403, 403, 403, 302)),
    # password change: everyone logged in (the reset pages are anonymous by nature: NOT_PAGES)
    ("get", "password_change", {}, {}, (200,) * 6),
    ("get", "password_change_done", {}, {}, (200,) * 6),
    # Django's admin: staff only, so every role here (the world's superuser is not staff) is sent to the
    # admin's login; tests/controlplane/accounts/test_admin.py walks each model's pages as staff
    ("get", "admin:index", {}, {}, (302,) * 6),
    ("get", "accounts:audit", {}, {}, (200, 403, 403, 200, 403, 200)),
    # datasets belong to a team (the run's dataset is alpha's): viewers read, members upload and
    # re-verify, admins delete (not one a run used: the page says why); another team's is a 404
    ("get", "datasets:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("post", "datasets:list", {}, {}, (400, 400, 403, 400, 403, 400)),  # no file: the form's 400
    ("get", "datasets:detail", {"dataset_id": "@dataset"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "runs:dataset_solve_rates", {"dataset_id": "@dataset"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "datasets:version", {"version_id": "@version"}, {}, (200, 200, 200, 404, 404, 200)),
    ("get", "datasets:problem", {"problem_id": "@problem"}, {}, (200, 200, 200, 404, 404, 200)),
    ("post", "datasets:verify_retry", {"version_id": "@version"}, {}, (302, 302, 403, 404, 404, 302)),
    ("post", "datasets:delete", {"dataset_id": "@dataset"}, {}, (302, 403, 403, 404, 404, 302)),
    # generation jobs (@gen_job: a queued one of alpha's dataset): members launch and cancel, viewers
    # watch; the launch form posted empty is the form's 400
    ("get", "datasets:generate", {"dataset_id": "@dataset"}, {}, (200, 200, 403, 404, 404, 200)),
    ("post", "datasets:generate", {"dataset_id": "@dataset"}, {}, (400, 400, 403, 404, 404, 400)),
    ("get", "datasets:job", {"job_id": "@gen_job"}, {}, (200, 200, 200, 404, 404, 200)),
    ("htmx#job-progress", "datasets:job", {"job_id": "@gen_job"}, {}, (200, 200, 200, 404, 404, 200)),
    ("post", "datasets:job_cancel", {"job_id": "@gen_job"}, {}, (302, 302, 403, 404, 404, 302)),
    # models belong to a team (the world's is alpha's, refused): everyone sees the page (their teams'
    # models), members register and inspect again; another team's model is a 404
    ("get", "registry:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("htmx#models", "registry:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("post", "registry:list", {}, {}, (400, 400, 403, 400, 403, 400)),  # no fields: the form's 400
    ("post", "registry:inspect", {"model_id": "@model"}, {}, (302, 302, 403, 404, 404, 302)),
    ("get", "registry:detail", {"model_id": "@model"}, {}, (200, 200, 200, 404, 404, 200)),
    ("htmx#model", "registry:detail", {"model_id": "@model"}, {}, (200, 200, 200, 404, 404, 200)),
    # exporting a run's checkpoint: members of its team (the world's run is running: refused, back to it)
    ("post", "registry:export", {"run_id": "@run"}, {"name": "m"}, (302, 302, 403, 404, 404, 302)),
    # evaluation jobs belong to the team of what they evaluate (the world's is alpha's, failed):
    # everyone sees the pages (their teams' jobs), members evaluate; another team's job is a 404
    ("get", "evals:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("htmx#evals", "evals:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "evals:new", {}, {}, (200, 200, 200, 200, 200, 200)),  # a viewer reads why not
    ("post", "evals:new", {}, {}, (400, 400, 403, 400, 403, 400)),  # no fields: the form's 400
    ("get", "evals:detail", {"job_id": "@eval_job"}, {}, (200, 200, 200, 404, 404, 200)),
    ("htmx#eval", "evals:detail", {"job_id": "@eval_job"}, {}, (200, 200, 200, 404, 404, 200)),
    ("post", "evals:again", {"job_id": "@eval_job"}, {}, (302, 302, 403, 404, 404, 302)),
    ("get", "evals:compare", {}, {"a": "@eval_job", "b": "@eval_job"}, (200, 200, 200, 404, 404, 200)),
    # sweeps belong to a team (@sweep: alpha's, over the world's run): everyone sees the list, members
    # launch (a viewer or a user in no team is refused the form), another team's sweep is a 404
    ("get", "sweeps:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "sweeps:new", {}, {}, (200, 200, 403, 200, 403, 200)),
    ("htmx#sweep-preview", "sweeps:new", {}, {}, (200, 200, 403, 200, 403, 200)),
    ("post", "sweeps:new", {}, {}, (400, 400, 403, 400, 403, 400)),  # no fields: the form's 400
    ("get", "sweeps:detail", {"sweep_id": "@sweep"}, {}, (200, 200, 200, 404, 404, 200)),
    ("htmx#sweep-runs", "sweeps:detail", {"sweep_id": "@sweep"}, {}, (200, 200, 200, 404, 404, 200)),
    ("post", "sweeps:stop", {"sweep_id": "@sweep"}, {}, (302, 302, 403, 404, 404, 302)),
]
# Alerts (runs/alerts): the world's rule is on alpha's run. Everyone has the list, the notifications and
# the bell (their own); members make, change and delete rules; viewers see them; another team's rule or
# run does not exist.
TABLE += [
    ("get", "alerts:list", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "alerts:new", {}, {}, (200, 200, 200, 200, 200, 200)),
    (
        "post",
        "alerts:new",
        {},
        {"run": "@run", "condition": "nan", "metric_key": "loss"},
        (302, 302, 403, 404, 404, 302),
    ),
    ("get", "alerts:rule", {"rule_id": "@alert_rule"}, {}, (200, 200, 200, 404, 404, 200)),
    (
        "post",
        "alerts:rule",
        {"rule_id": "@alert_rule"},
        {"condition": "nan", "metric_key": "loss"},
        (302, 302, 403, 404, 404, 302),
    ),
    ("post", "alerts:delete", {"rule_id": "@alert_rule"}, {}, (302, 302, 403, 404, 404, 302)),
    ("get", "alerts:notifications", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("post", "alerts:read", {}, {}, (302, 302, 302, 302, 302, 302)),
    ("get", "alerts:bell", {}, {}, (200, 200, 200, 200, 200, 200)),
    ("get", "alerts:run", {"run_id": "@run"}, {}, (200, 200, 200, 404, 404, 200)),
]
# Names that are not pages of a logged-in browser: the login and password-reset pages themselves, and the
# run-token APIs (machine auth, tests/runs/test_api.py and test_claim.py).
NOT_PAGES = {
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "home",
    "healthz",  # load balancers' probe: anonymous by design (tests/controlplane/test_health.py)
    "api-run-events",
    "api-run-spec",
    "api-run-claim",
    "api-run-release",
    "api-not-found",
}


def _resolve(world, value):
    """Table values naming things of the world ("@run", "@member") become their ids."""
    if not str(value).startswith("@"):
        return value
    name = value[1:]
    if name == "version":
        return world.run.dataset_version_id
    if name == "dataset":
        return world.run.dataset_version.dataset_id
    if name == "sweep":
        return world_sweep(world)
    if name == "gen_job":
        return world_generation_job(world)
    return world.users[name].pk if name in world.users else getattr(world, name).pk


def _url_names(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}"


def test_the_table_walks_every_page_of_the_site():
    # The REST API's routes (namespace "api") have their own walk: tests/controlplane/api/test_roles.py;
    # the admin's (namespace "admin", staff only) theirs: tests/controlplane/accounts/test_admin.py.
    names = {
        n for n in _url_names(get_resolver().url_patterns) if not n.startswith(("api:", "admin:"))
    } - NOT_PAGES
    names.add("admin:index")

    assert names - {name for _, name, _, _, _ in TABLE} == set()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "name", "kwargs", "data", "expected"),
    TABLE,
    ids=[f"{m}-{n}-{'&'.join(d) or 'plain'}" for m, n, _, d, _ in TABLE],
)
def test_every_page_answers_each_role_as_its_permissions_say(
    client, world, role, method, name, kwargs, data, expected
):
    client.force_login(world.users[role])
    url = reverse(name, kwargs={key: _resolve(world, value) for key, value in kwargs.items()})
    data = {key: _resolve(world, value) for key, value in data.items()}

    if method == "post":
        response = client.post(url, data)
    else:
        target = method.partition("#")[2]
        headers = {"HX-Request": "true", "HX-Target": target} if target else {}
        response = client.get(url, data, headers=headers)

    assert response.status_code == expected[ROLES.index(role)]


@pytest.mark.parametrize(
    ("method", "name", "kwargs", "data"),
    [row[:4] for row in TABLE],
    ids=[f"{m}-{n}-{'&'.join(d) or 'plain'}" for m, n, _, d, _ in TABLE],
)
def test_every_page_needs_a_login(client, world, method, name, kwargs, data):
    url = reverse(name, kwargs={key: _resolve(world, value) for key, value in kwargs.items()})
    data = {key: _resolve(world, value) for key, value in data.items()}

    response = client.post(url, data) if method == "post" else client.get(url, data)

    assert response.status_code == 302
    # The admin has its own login page (it asks for a staff account).
    assert response["Location"].startswith(reverse("admin:login" if name.startswith("admin:") else "login"))


def test_a_viewer_cannot_cancel_and_the_run_keeps_running(client, world):
    client.force_login(world.users["viewer"])

    client.post(reverse("runs:cancel", kwargs={"run_id": world.run.pk}))

    assert Run.objects.get(pk=world.run.pk).status == RunStatus.RUNNING
    assert not LogLine.objects.filter(run=world.run, message__contains="cancel requested").exists()


def test_the_viewer_sees_no_cancel_clone_or_resume_buttons(client, world):
    client.force_login(world.users["viewer"])
    page = client.get(reverse("runs:detail", kwargs={"run_id": world.run.pk})).content.decode()
    client.force_login(world.users["member"])
    member_page = client.get(reverse("runs:detail", kwargs={"run_id": world.run.pk})).content.decode()

    assert 'data-testid="cancel"' not in page and 'data-testid="clone"' not in page
    assert 'data-testid="cancel"' in member_page and 'data-testid="clone"' in member_page


def test_an_admin_of_another_team_sets_no_budget_of_this_teams_users_or_the_team(client, world):
    client.force_login(world.users["outsider"])

    client.post(reverse("spend:budget-set"), {"user": world.users["member"].pk, "usd_per_month": "5"})
    client.post(reverse("spend:team-budget-set"), {"team": world.alpha.pk, "usd_per_month": "5"})

    assert not MonthlyBudget.objects.exists()
    assert not TeamMonthlyBudget.objects.exists()
