"""Repository episodes (issue #23) from the trainer's event to the review: ingest validates and caps the
"repo" object, the generation page shows the trajectory view, the review list filters by outcome, and
labels work on episodes as on any generation. Everything goes through the real ingest API and pages."""

import json
import re

import pytest

from runs.events import MAX_DIFF, MAX_TRAJECTORY, MAX_TURN_TEXT
from runs.models import Generation
from runs.review.models import ReviewItem, ReviewLabel
from tests.factories import TEST_TOKEN, ProblemFactory, RunFactory

pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert('x')</script>"
F2P = "tests.test_reader.TestReader.test_quotes"
P2P = "tests.test_reader.TestReader.test_plain"
REFERENCE = (
    "diff --git a/tinycsv/reader.py b/tinycsv/reader.py\n--- a/tinycsv/reader.py\n+++ b/tinycsv/reader.py\n"
    "@@ -1,2 +1,2 @@\n def split(line):\n-    return line.split(',')\n+    return parse(line)\n"
)


def post(client, run, events):
    return client.post(
        f"/api/v1/runs/{run.pk}/events",
        data=json.dumps({"events": events}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )


def repo_object(outcome="resolved", **extra):
    return {
        "outcome": outcome,
        "turns": 3,
        "invalid_actions": 1,
        "test_files_edited": False,
        "trajectory": [
            {
                "action": '{"tool": "view", "args": {"path": "tinycsv/reader.py"}}',
                "observation": "1 def split",
                "valid": True,
            },
            {
                "action": "not json at all",
                "observation": "error: an action is one JSON object",
                "valid": False,
            },
            {"action": '{"tool": "submit", "args": {}}', "observation": "submitted", "valid": True},
        ],
        "trajectory_cut": 0,
        "diff": REFERENCE,
        "fail_to_pass": {F2P: "passed" if outcome == "resolved" else "failed"},
        "pass_to_pass": {P2P: "passed"},
        "tests_before": {F2P: "failed", P2P: "passed"},
        "duration_ms": 5400,
        **extra,
    }


def episode_event(seq=1, *, outcome="resolved", step=0, problem_id="tinycsv/1", repo=None):
    passed = outcome == "resolved"
    return {
        "seq": seq,
        "type": "generation",
        "step": step,
        "problem_id": problem_id,
        "completion": REFERENCE if passed else "",
        "reward": 1.0 if passed else 0.0,
        "passed": passed,
        "error_class": "passed"
        if passed
        else "sandbox_error"
        if outcome == "sandbox_error"
        else "wrong_answer",
        "repo": repo if repo is not None else repo_object(outcome),
    }


@pytest.fixture
def run(user):
    problem = ProblemFactory(
        task_id="tinycsv/1",
        prompt="The reader splits quoted fields: <b>fix it</b>",
        solution=REFERENCE,
        tests="",
    )
    return RunFactory(created_by=user, dataset_version=problem.version)


# --- ingest ---


def test_an_episode_event_is_stored_with_its_outcome_and_repo_object(client, run):
    # when the trainer posts a resolved episode and a function generation in one batch
    plain = {**episode_event(2), "problem_id": "Test/0", "completion": "x", "passed": False}
    plain.pop("repo")
    plain["error_class"] = "wrong_answer"
    response = post(client, run, [episode_event(1), plain])
    # then both are stored; the episode carries its outcome and trajectory, the other none
    assert response.status_code == 200 and response.json()["accepted"] == 2
    episode = Generation.objects.get(run=run, problem_id="tinycsv/1")
    assert episode.outcome == "resolved" and episode.passed
    assert episode.repo["turns"] == 3 and episode.repo["invalid_actions"] == 1
    assert [t["valid"] for t in episode.repo["trajectory"]] == [True, False, True]
    assert episode.repo["fail_to_pass"] == {F2P: "passed"}
    assert episode.repo["tests_before"] == {F2P: "failed", P2P: "passed"}
    assert episode.repo["diff"] == REFERENCE and "diff_cut" not in episode.repo
    other = Generation.objects.get(run=run, problem_id="Test/0")
    assert other.outcome == "" and other.repo is None
    # and the episode is indexed for review even though it resolved its task
    assert ReviewItem.objects.filter(generation=episode, passed=True).exists()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"repo": "resolved"}, "repo", "must be an object"),
        ({"repo": repo_object(outcome="solved")}, "repo.outcome", "must be one of resolved"),
        ({"repo": repo_object(turns="3")}, "repo.turns", "must be an integer"),
        ({"repo": repo_object(test_files_edited=1)}, "repo.test_files_edited", "true or false"),
        ({"repo": repo_object(trajectory={"action": "x"})}, "repo.trajectory", "must be a list"),
        ({"repo": repo_object(trajectory=["x"])}, "repo.trajectory[0]", "must be an object"),
        (
            {"repo": repo_object(trajectory=[{"action": 1, "observation": "", "valid": True}])},
            "repo.trajectory[0].action",
            "must be a string",
        ),
        (
            {"repo": repo_object(trajectory=[{"action": "", "observation": "", "valid": "yes"}])},
            "repo.trajectory[0].valid",
            "true or false",
        ),
        ({"repo": repo_object(fail_to_pass=[F2P])}, "repo.fail_to_pass", "object of test id to outcome"),
        (
            {"repo": repo_object(pass_to_pass={P2P: "ok"})},
            f"repo.pass_to_pass.{P2P}",
            "must be one of passed",
        ),
        ({"repo": repo_object(diff=["a"])}, "repo.diff", "must be a string"),
        # passed says resolved, the outcome says otherwise
        ({"repo": repo_object(outcome="tests_fail")}, "repo.outcome", "passed means resolved"),
    ],
)
def test_a_malformed_repo_object_is_refused_naming_the_event_and_the_field(client, run, change, field, words):
    # given a batch whose second event is an episode with one wrong field
    response = post(client, run, [{"seq": 1, "type": "heartbeat"}, {**episode_event(2), **change}])
    # then the whole batch is refused, the answer naming events[1] and the field
    assert response.status_code == 400
    body = response.json()
    assert body["event_index"] == 1 and body["field"] == field
    assert body["error"].startswith(f"events[1].{field}: ") and words in body["error"]
    assert not Generation.objects.filter(run=run).exists()


def test_a_sandbox_error_outcome_must_come_with_the_sandbox_error_class(client, run):
    event = episode_event(1, outcome="sandbox_error")
    assert post(client, run, [event]).status_code == 200
    event = {**episode_event(2, outcome="sandbox_error"), "error_class": "wrong_answer"}
    response = post(client, run, [event])
    assert response.status_code == 400 and response.json()["field"] == "repo.outcome"


def test_over_long_texts_and_lists_are_cut_and_the_object_says_how_much(client, run):
    # given an episode of 75 turns, one observation of 10,000 characters, a 25,000-character diff and
    # a trainer that already left 5 turns out
    turns = [{"action": '{"tool": "find", "args": {}}', "observation": "ok", "valid": True}] * 75
    turns[0] = {"action": "a" * (MAX_TURN_TEXT + 10), "observation": "o" * 10_000, "valid": False}
    repo = repo_object("tests_fail", trajectory=turns, trajectory_cut=5, diff="+" * (MAX_DIFF + 5000))
    # when it is posted
    response = post(client, run, [episode_event(1, outcome="tests_fail", repo=repo)])
    # then it is accepted, cut to the caps, and the cuts are counted
    assert response.status_code == 200
    stored = Generation.objects.get(run=run).repo
    assert len(stored["trajectory"]) == MAX_TRAJECTORY
    assert stored["trajectory_cut"] == 5 + (75 - MAX_TRAJECTORY)
    first = stored["trajectory"][0]
    assert first["action_cut"] == 10 and first["observation_cut"] == 10_000 - MAX_TURN_TEXT
    assert first["observation"].startswith("o" * MAX_TURN_TEXT)
    assert first["observation"].endswith(f"[cut: {10_000 - MAX_TURN_TEXT} more characters]")
    assert stored["diff_cut"] == 5000 and len(stored["diff"]) < MAX_DIFF + 100


def test_what_the_environment_sends_is_taken_as_it_is(client, run):
    # given an episode result of the environment (workers/repo/env.py) of 70 turns with long texts and
    # a test id longer than the cap, as the trainer turns it into an event
    from workers.repo.env import EpisodeResult

    turns = [
        {"action": "x" * 9000, "observation": f"turn {i}\n" + "o" * 9000, "valid": i % 7 != 0}
        for i in range(70)
    ]
    long_id = "tests/test_reader.py::test_param[" + "a" * 600 + "]"
    result = EpisodeResult(
        task_id="tinycsv/1",
        outcome="broke_passing_tests",
        reward=0.0,
        diff="+" * 30_000,
        turns=70,
        invalid_actions=10,
        test_files_edited=True,
        fail_to_pass={F2P: "passed"},
        pass_to_pass={P2P: "failed", long_id: "passed"},
        tests_before={F2P: "failed", P2P: "passed"},
        trajectory=turns,
        duration_ms=61_000,
    )
    fields = result.event_fields()
    event = {**episode_event(1, outcome="broke_passing_tests", repo=fields), "completion": fields["diff"]}
    # when it is posted, it is accepted
    assert post(client, run, [event]).status_code == 200
    stored = Generation.objects.get(run=run).repo
    # then what the environment already capped is stored as sent (no second cut), the test id cut
    assert stored["trajectory"] == fields["trajectory"] and stored["trajectory_cut"] == 10
    assert stored["diff"] == fields["diff"] and "diff_cut" not in stored
    assert not any("action_cut" in t or "observation_cut" in t for t in stored["trajectory"])
    assert stored["tests_cut"] == 1 and len(stored["pass_to_pass"]) == 2
    assert all(len(test_id) <= 501 for test_id in stored["pass_to_pass"])
    assert Generation.objects.get(run=run).outcome == "broke_passing_tests"


def test_a_repeated_episode_event_is_stored_once(client, run):
    post(client, run, [episode_event(1)])
    response = post(client, run, [episode_event(1)])
    assert response.json()["duplicates"] == 1 and Generation.objects.filter(run=run).count() == 1


# --- the trajectory view ---


def test_the_trajectory_view_shows_statement_turns_diffs_and_tests(logged_in, client, run):
    post(client, run, [episode_event(1)])
    episode = Generation.objects.get(run=run)
    response = logged_in.get(f"/review/generations/{episode.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    # the outcome, the statement (escaped), and the three turns, the invalid one marked
    assert 'data-testid="outcome">resolved<' in body
    assert "The reader splits quoted fields: &lt;b&gt;fix it&lt;/b&gt;" in body
    turns = re.findall(r'<li class="turn( invalid)?" data-testid="turn"', body)
    assert [bool(invalid) for invalid in turns] == [False, True, False]
    assert body.count('data-testid="invalid-action"') == 1
    # the action pretty-printed as JSON; the invalid one as the model wrote it
    assert "{\n  &quot;tool&quot;: &quot;view&quot;,\n  &quot;args&quot;: {\n" in body
    assert ">not json at all</pre>" in body
    # the final diff and the reference, both highlighted by Pygments' diff lexer (a "gi" inserted line)
    final = body.split('data-testid="final-diff"')[1].split('data-testid="reference-patch"')[0]
    assert '<span class="gi">+    return parse(line)</span>' in final
    reference = body.split('data-testid="reference-patch"')[1]
    assert '<span class="gd">-    return line.split(', ")</span>" in reference
    # the test tables: F2P went failed → passed, P2P stayed passed
    f2p = body.split('data-testid="tests-1"')[1].split("</table>")[0]
    assert F2P in f2p and re.search(
        r"verdict-failed\">failed</span></td>\s*<td><span class=\"verdict verdict-passed", f2p
    )
    assert P2P in body.split('data-testid="tests-2"')[1]
    assert 'data-testid="test-edit-flag"' not in body


def test_a_long_observation_folds_and_every_text_is_escaped(logged_in, client, run):
    # given an episode whose action, observation and diff carry markup, and whose test edits were flagged
    long_obs = (HOSTILE + "\n") * 60
    repo = repo_object(
        "tests_fail",
        test_files_edited=True,
        trajectory=[
            {
                "action": json.dumps({"tool": "search", "args": {"text": HOSTILE}}),
                "observation": HOSTILE,
                "valid": True,
            },
            {"action": '{"tool": "run_tests", "args": {}}', "observation": long_obs, "valid": True},
        ],
        diff=f"--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+{HOSTILE}\n",
        fail_to_pass={HOSTILE: "failed"},
    )
    post(client, run, [episode_event(1, outcome="tests_fail", repo=repo)])
    episode = Generation.objects.get(run=run)
    body = logged_in.get(f"/review/generations/{episode.pk}/").content.decode()
    # then no hostile text is markup, in the action, the observation, the diff or the test id
    assert HOSTILE not in body
    assert body.count("&lt;script&gt;") >= 60 + 4
    # the long observation sits in a <details>, the short one not
    assert re.search(r'<details class="observation-fold"><summary>Observation \(\d+ characters\)', body)
    assert body.count('class="observation-fold"') == 1
    # and the test-file edit is flagged, as a reward-hacking attempt, on the page and in the index
    assert 'data-testid="test-edit-flag"' in body
    item = ReviewItem.objects.get(generation=episode)
    assert item.flagged and item.flag_rules == ",test_tampering,"


# --- the review list: outcome filter, counts, labels ---


def test_the_review_list_filters_by_outcome_with_counts(logged_in, client, run):
    # given five episodes: two resolved, two tests_fail, one turn_limit; and a failing function sample
    events = [
        episode_event(1, outcome="resolved", step=0),
        episode_event(2, outcome="resolved", step=1),
        episode_event(3, outcome="tests_fail", step=0),
        episode_event(4, outcome="tests_fail", step=1),
        episode_event(5, outcome="turn_limit", step=1),
    ]
    assert post(client, run, events).status_code == 200
    url = f"/review/runs/{run.pk}/"
    # when the review page opens with no filter
    body = logged_in.get(url).content.decode()
    # then the failing episodes are listed, with the outcome counts beside the classes
    assert body.count('data-testid="gen-row"') == 3
    assert re.search(r'data-testid="outcome-resolved">resolved <span class="muted">2</span>', body)
    assert re.search(r'data-testid="outcome-tests_fail">tests_fail <span class="muted">2</span>', body)
    assert re.search(r'data-testid="outcome-turn_limit">turn_limit <span class="muted">1</span>', body)
    # when filtered by an outcome, resolved ones too are listed
    resolved = logged_in.get(url, {"outcome": "resolved"})
    assert [i.generation.outcome for i, _ in resolved.context["page"].rows] == ["resolved", "resolved"]
    failing = logged_in.get(url, {"outcome": "tests_fail", "step_min": 1})
    assert [(i.step, i.generation.outcome) for i, _ in failing.context["page"].rows] == [(1, "tests_fail")]
    assert dict(failing.context["page"].outcome_facets) == {"resolved": 1, "tests_fail": 1, "turn_limit": 1}
    # an unknown outcome is no filter at all (as a bad class would be): the page still answers
    assert logged_in.get(url, {"outcome": "nonsense"}).status_code == 200


def test_a_run_without_episodes_shows_no_outcome_filter(logged_in, run):
    body = logged_in.get(f"/review/runs/{run.pk}/").content.decode()
    assert 'data-testid="outcome-facets"' not in body and 'name="outcome"' not in body


def test_labels_work_on_an_episode(logged_in, client, run):
    post(client, run, [episode_event(1, outcome="tests_fail")])
    episode = Generation.objects.get(run=run)
    response = logged_in.post(
        f"/review/generations/{episode.pk}/label", {"label": "bad_test", "comment": "flaky"}
    )
    assert response.status_code == 200
    assert list(ReviewLabel.objects.filter(generation=episode).values_list("label", flat=True)) == [
        "bad_test"
    ]
    listed = logged_in.get(f"/review/runs/{run.pk}/", {"outcome": "tests_fail"})
    assert [(item.generation_id, label) for item, label in listed.context["page"].rows] == [
        (episode.pk, "bad_test")
    ]


def test_an_episode_offers_no_program_compare_links(logged_in, client, run):
    # given two episodes of the same task at two steps (a function's page would link them)
    post(client, run, [episode_event(1, step=0), episode_event(2, outcome="tests_fail", step=1)])
    episode = Generation.objects.get(run=run, step=1)
    body = logged_in.get(f"/review/generations/{episode.pk}/").content.decode()
    assert 'data-testid="compare-links"' not in body and 'data-testid="trajectory"' in body
