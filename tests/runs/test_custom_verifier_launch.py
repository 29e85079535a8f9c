"""A run's verifier (reward_custom_source) through the launch form's YAML, the stored config, the spec the
node reads and the run page: refused at launch when it does not parse, shown escaped as code."""

import pytest

from runs.models import Run
from tests.factories import ProblemFactory, RunFactory
from tests.runs.launch_form import LAUNCH_FORM
from tests.runs.node_spec import node_spec
from workers.trainer.spec import parse_spec

pytestmark = pytest.mark.django_db

VERIFIER = "def reward(candidate, problem):\n    return 1.0 if candidate(1) == 2 else 0.0\n"


def _yaml(source: str, weight: float = 0.5) -> str:
    # The weight after the block: the form strips the YAML's last newline, which would be the source's.
    block = "".join(f"  {line}\n" for line in source.splitlines())
    return f"steps: 5\nreward_custom_source: |\n{block}reward_custom: {weight}\n"


def test_a_verifier_in_the_yaml_reaches_the_trainer(logged_in, django_capture_on_commit_callbacks):
    own = "def reward(candidate, problem):\n    return 0.5\n"
    version = ProblemFactory(verifier=own).version

    with django_capture_on_commit_callbacks(execute=False):
        response = logged_in.post(
            "/runs/new/", {**LAUNCH_FORM, "dataset_version": version.pk, "config_yaml": _yaml(VERIFIER)}
        )

    assert response.status_code == 302, response.content.decode()[-2000:]
    run = Run.objects.get()
    assert run.config["reward_custom_source"] == VERIFIER and run.config["reward_custom"] == 0.5
    spec = parse_spec(node_spec(run))
    assert spec.train.reward_custom_source == VERIFIER and spec.train.reward_custom == 0.5
    assert [p.verifier for p in spec.problems] == [own]  # the problem's own, over the run's


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "def reward(candidate, problem):\n    return [\n",
            "config line 2, &#x27;reward_custom_source&#x27;: line 2 of the source does not parse",
        ),
        (
            "def verify(candidate, problem):\n    return 1\n",
            "config line 2, &#x27;reward_custom_source&#x27;: defines no function reward(candidate, problem)",
        ),
    ],
)
def test_a_verifier_that_does_not_parse_or_defines_no_reward_is_refused_at_launch(logged_in, source, message):
    version = ProblemFactory().version

    response = logged_in.post(
        "/runs/new/", {**LAUNCH_FORM, "dataset_version": version.pk, "config_yaml": _yaml(source)}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert Run.objects.count() == 0


def test_a_weight_without_a_verifier_is_refused_at_launch(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(
        "/runs/new/", {**LAUNCH_FORM, "dataset_version": version.pk, "config_yaml": "reward_custom: 1\n"}
    )

    assert (
        "config line 1, &#x27;reward_custom&#x27;: reward_custom &gt; 0 needs a verifier"
        in response.content.decode()
    )
    assert Run.objects.count() == 0


def test_the_run_page_shows_the_verifier_escaped_as_code(logged_in):
    source = "def reward(candidate, problem):\n    return 1.0 if '<b>' else 0.0\n"
    run = RunFactory(config={"reward_custom": 1.0, "reward_custom_source": source})

    content = logged_in.get(f"/runs/{run.pk}/").content.decode()

    shown = "def reward(candidate, problem):\n    return 1.0 if &#x27;&lt;b&gt;&#x27; else 0.0\n"
    assert f'<pre class="config-code"><code>{shown}</code></pre>' in content
    assert "<b>" not in content
