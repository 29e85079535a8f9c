"""The execution-outcome critic: it learns a learnable stream, its metrics, and audited skip mode's caps."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from workers.trainer.critic import (
    CRITIC_ERROR_MIN,
    CRITIC_ERROR_WINDOW,
    CRITIC_SKIPPED,
    OnlineCritic,
    SkipGuard,
    TrainerCritic,
    choose_skips,
    critic_metrics,
    features,
    parses,
)
from workers.trainer.rewards import score_completions
from workers.trainer.spec import Problem, SandboxSpec, TrainSpec, parse_spec

STATEMENTS = [
    "    xs = list(xs)\n",
    "    total = 0\n",
    "    for x in xs:\n        total += x\n",
    "    xs.reverse()\n",
    "    n = len(xs)\n",
    "    ys = [x * 2 for x in xs]\n",
]


def _synthetic(rng: random.Random) -> tuple[str, str, float]:
    """(task id, completion, verdict): every completion parses; it passes iff it returns sorted(xs)
    and never calls xs.pop() — a rule only the text tells."""
    body = rng.sample(STATEMENTS, rng.randint(1, 3))
    if rng.random() < 0.3:
        body.insert(rng.randrange(len(body) + 1), "    xs.pop()\n")
    good = rng.random() < 0.45
    body.append("    return sorted(xs)\n" if good else rng.choice(["    return xs\n", "    return None\n"]))
    passed = good and "    xs.pop()\n" not in body
    return f"S/{rng.randrange(3)}", "".join(body), float(passed)


def test_the_critic_learns_a_learnable_stream_above_the_base_rate():
    rng = random.Random(7)
    critic = OnlineCritic(seed=0)
    accuracy, labels = [], []
    for _ in range(40):
        batch = [_synthetic(rng) for _ in range(32)]
        examples = [features(task, "def f(xs):\n", text) for task, text, _ in batch]
        verdicts = [y for _, _, y in batch]
        probs = critic.predict(examples)  # before this batch's verdicts are used
        accuracy.append(critic_metrics(probs, verdicts, threshold=0.9)["critic/accuracy"])
        labels += verdicts
        critic.learn(examples, verdicts)

    base = sum(labels) / len(labels)
    majority = max(base, 1 - base)  # what always answering the commoner verdict scores
    late = sum(accuracy[-10:]) / 10
    assert 0.2 < base < 0.5
    assert late >= majority + 0.15, (late, majority, accuracy)
    assert late > sum(accuracy[:3]) / 3


def test_critic_metrics_on_hand_made_cases():
    probs = [0.99, 0.8, 0.3, 0.02, 0.6]
    labels = [1.0, 0.0, 1.0, 0.0, 1.0]
    m = critic_metrics(probs, labels, threshold=0.9)
    # predicted pass: 0.99, 0.8, 0.6 -> tp 2 (0.99, 0.6), fp 1 (0.8); fn 1 (0.3); tn 1 (0.02)
    assert m["critic/accuracy"] == pytest.approx(3 / 5)
    assert m["critic/precision"] == pytest.approx(2 / 3)
    assert m["critic/recall"] == pytest.approx(2 / 3)
    assert m["critic/base_rate"] == pytest.approx(3 / 5)
    brier = (0.01**2 + 0.8**2 + 0.7**2 + 0.02**2 + 0.4**2) / 5
    assert m["critic/brier"] == pytest.approx(brier)
    # bins: [0.0-0.1) {0.02:0}, [0.3-0.4) {0.3:1}, [0.6-0.7) {0.6:1}, [0.8-0.9) {0.8:0}, [0.9-1] {0.99:1}
    ece = (0.02 + 0.7 + 0.4 + 0.8 + 0.01) / 5
    assert m["critic/ece"] == pytest.approx(ece)
    assert m["critic/savable_frac"] == pytest.approx(2 / 5)  # 0.99 and 0.02: sure and right
    assert critic_metrics([], [], threshold=0.9) == {}


def test_precision_and_recall_are_left_out_when_undefined():
    m = critic_metrics([0.1, 0.2], [0.0, 0.0], threshold=0.9)
    assert "critic/precision" not in m and "critic/recall" not in m
    assert m["critic/accuracy"] == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_skips_never_exceed_the_configured_share_on_a_stream(seed: int):
    rng = random.Random(seed)
    skipped_any = False
    for _ in range(400):
        n = rng.randint(0, 64)
        probs = [rng.choice([rng.random(), rng.random() ** 8, 1 - rng.random() ** 8]) for _ in range(n)]
        threshold = rng.uniform(0.5, 1.0)
        audit_frac = rng.uniform(0.01, 1.0)
        max_skip_frac = rng.uniform(0.0, 1.0)
        skipped, audited = choose_skips(
            probs, threshold=threshold, audit_frac=audit_frac, max_skip_frac=max_skip_frac, rng=rng
        )
        confident = {i for i, p in enumerate(probs) if max(p, 1 - p) >= threshold}
        assert len(skipped) <= max_skip_frac * n + 1e-9
        assert set(skipped) <= confident and not set(skipped) & set(audited)
        assert set(skipped) | set(audited) == confident
        assert len(audited) >= audit_frac * len(confident) - 1e-9
        assert len(skipped) <= math.floor((1 - audit_frac) * len(confident) + 1e-9)
        skipped_any = skipped_any or bool(skipped)
    assert skipped_any


def test_creating_the_critic_leaves_the_policys_random_stream_alone():
    before = torch.random.get_rng_state()
    OnlineCritic(seed=3).learn([features("t", "", "x = 1\n")], [1.0])
    assert torch.equal(before, torch.random.get_rng_state())


def test_the_critic_state_round_trips_through_a_checkpoint(tmp_path: Path):
    rng = random.Random(1)
    batch = [_synthetic(rng) for _ in range(64)]
    examples = [features(t, "def f(xs):\n", c) for t, c, _ in batch]
    labels = [y for _, _, y in batch]
    a = TrainerCritic(TrainSpec(critic=True), rank=0, gather=lambda obj: [obj])
    a.model.learn(examples[:32], labels[:32])
    a.save(tmp_path / "step1" / "critic.pt")
    b = TrainerCritic(TrainSpec(critic=True, seed=99), rank=0, gather=lambda obj: [obj])
    assert b.load(tmp_path / "step1" / "critic.pt")
    assert not b.load(tmp_path / "missing.pt")
    assert b.model.labels_seen == 32
    a.model.learn(examples[32:], labels[32:])
    b.model.learn(examples[32:], labels[32:])  # same replay, rng and moments: the same update
    assert a.model.predict(examples) == b.model.predict(examples)


def test_parses_tells_syntax_without_running_anything(tmp_path: Path):
    marker = tmp_path / "ran"
    assert parses(f"open({str(marker)!r}, 'w').write('x')\n") is True
    assert not marker.exists()
    assert parses("def f(:\n") is False
    assert parses("x = '\\d'\n") is True  # a SyntaxWarning, not an error
    assert parses("(" * 10_000) is False


PROBLEM = Problem(
    task_id="T/ident",
    prompt="def ident(x):\n",
    entry_point="ident",
    tests="def check(candidate):\n    assert candidate(5) == 5\n",
)
# (completion, passes): right, wrong answer, syntax error
CHOICES = [("    return x\n", True), ("    return -x\n", False), ("    return x +\n", False)]


def _skipping_critic() -> TrainerCritic:
    """Skip mode on a short fuse: sure at 0.9, a quarter audited, skipping from the 48th verdict."""
    train = TrainSpec(
        critic=True,
        critic_skip=True,
        critic_threshold=0.9,
        critic_audit_frac=0.25,
        critic_max_skip_frac=0.5,
        critic_min_labels=48,
    )
    return TrainerCritic(train, rank=0, gather=lambda obj: [obj])


def _real_sandbox(problems, texts):
    return score_completions(problems, texts, sandbox=SandboxSpec(timeout_s=30.0), partial_credit=False)


def test_audited_skip_mode_on_the_real_sandbox_keeps_to_its_shares():
    critic = _skipping_critic()
    rng = random.Random(0)
    sandbox_items = 0

    def run_sandbox(problems, texts):
        nonlocal sandbox_items
        sandbox_items += sum(len(g) for g in texts)
        return _real_sandbox(problems, texts)

    skipped_total = right = 0
    steps_with_skips = 0
    for step in range(14):
        picks = [rng.choice(CHOICES) for _ in range(16)]
        before = sandbox_items
        scores = critic.score([PROBLEM], [[t for t, _ in picks]], step=step, run_sandbox=run_sandbox)[0]
        m = critic.take_metrics()
        skipped = [
            (s, ok) for s, (_, ok) in zip(scores, picks, strict=True) if s.error_class == CRITIC_SKIPPED
        ]
        assert len(skipped) <= 8  # critic_max_skip_frac of 16
        assert sandbox_items - before == 16 - len(skipped)
        assert m["critic/skipped_frac"] == pytest.approx(len(skipped) / 16)
        if skipped:
            steps_with_skips += 1
            assert step * 16 >= 48  # not before critic_min_labels verdicts
            assert m["critic/audited"] >= 1 and "critic/audit_error_rate" in m
        for s, ok in skipped:
            assert s.valid and s.reward == (1.0 if s.passed else 0.0) and s.tests_total == 0
            right += s.passed == ok
        skipped_total += len(skipped)
        assert {"critic/accuracy", "critic/brier", "critic/ece", "critic/savable_frac"} <= m.keys()
    assert steps_with_skips >= 3
    assert right / skipped_total >= 0.9  # the skipped samples' predicted verdicts were right


def test_the_skip_guard_weighs_only_sure_predictions_and_needs_enough_of_them():
    guard = SkipGuard(max_error=0.1)
    # unsure predictions are not its business, however wrong
    guard.observe([0.6, 0.4] * 50, [0.0, 1.0] * 50, threshold=0.9)
    assert guard.error_rate() is None and not guard.allows()
    guard.observe([0.99] * (CRITIC_ERROR_MIN - 1), [1.0] * (CRITIC_ERROR_MIN - 1), threshold=0.9)
    assert not guard.allows()  # right so far, but too few to go on
    guard.observe([0.01], [0.0], threshold=0.9)
    assert guard.allows() and guard.error_rate() == 0.0
    guard.observe([0.99] * 3, [0.0] * 3, threshold=0.9)  # 3 of 23 sure ones wrong: 13 % > 10 %
    assert not guard.allows()
    guard.observe([0.02] * CRITIC_ERROR_WINDOW, [0.0] * CRITIC_ERROR_WINDOW, threshold=0.9)
    assert guard.allows() and guard.error_rate() == 0.0  # the old mistakes have left the window


def test_skip_mode_pauses_when_the_verdicts_drift_from_what_the_critic_learned():
    critic = _skipping_critic()  # the guard at its default: at most 5 % of sure predictions wrong
    rng = random.Random(0)
    # The same task, prompt and completions; from step 14 on the tests want -x: the critic's sure
    # "passes" on `return x` are now wrong, and only the audit can tell.
    flipped = Problem(
        PROBLEM.task_id, PROBLEM.prompt, PROBLEM.entry_point, PROBLEM.tests.replace("== 5", "== -5")
    )

    history = []
    for step in range(26):
        problem = PROBLEM if step < 14 else flipped
        texts = [rng.choice(CHOICES)[0] for _ in range(16)]
        scores = critic.score([problem], [texts], step=step, run_sandbox=_real_sandbox)[0]
        m = critic.take_metrics()
        skipped = sum(s.error_class == CRITIC_SKIPPED for s in scores)
        history.append((step, skipped, m["critic/skip_paused"]))
        if m["critic/skip_paused"]:
            assert skipped == 0  # paused: every sample runs
    skipping_before = [s for step, s, _ in history if step < 14]
    paused_after = [step for step, _, paused in history if step >= 14 and paused]
    assert sum(skipping_before) > 0  # it had earned skipping on the old tests
    assert paused_after and paused_after[0] <= 18, history  # and lost it within a few steps of the drift


def _raw(**train: object) -> dict:
    problem = {"task_id": "T/0", "prompt": "def f():\n", "entry_point": "f", "tests": "assert True\n"}
    return {"run_id": 1, "train": train, "problems": [problem]}


def test_critic_settings_default_off_and_are_checked_by_name():
    t = parse_spec(_raw()).train
    assert (t.critic, t.critic_skip, t.sft_with_reasoning) == (False, False, False)
    assert (t.critic_threshold, t.critic_audit_frac, t.critic_max_skip_frac) == (0.95, 0.1, 0.5)
    assert t.critic_max_audit_error == 0.05
    with pytest.raises(ValueError, match=r"train\.critic_skip: critic_skip needs critic: true"):
        parse_spec(_raw(critic_skip=True))
    with pytest.raises(ValueError, match=r"train\.critic_threshold"):
        parse_spec(_raw(critic=True, critic_threshold=1.5))
    with pytest.raises(ValueError, match=r"train\.critic_threshold"):
        parse_spec(_raw(critic=True, critic_threshold=0.4))
    with pytest.raises(ValueError, match=r"train\.critic_audit_frac"):
        parse_spec(_raw(critic=True, critic_skip=True, critic_audit_frac=0))
    with pytest.raises(ValueError, match=r"train\.critic_max_skip_frac"):
        parse_spec(_raw(critic=True, critic_max_skip_frac=2))
