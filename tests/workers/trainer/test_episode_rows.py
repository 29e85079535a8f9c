"""Repository episodes as training rows (docs/trainer.md, "Repository tasks (multi-turn)"): the loss mask
against hand computations on the real tiny model, the transcripts against what a chat template renders,
and the spec's repo problem item."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer

from workers.trainer.batches import Row, loss_rows
from workers.trainer.episodes import BaseTranscript, ChatTranscript, EpisodeRow, training_row
from workers.trainer.grpo import grpo_loss, token_weights
from workers.trainer.logprobs import apply_loss_masks, completion_logprobs, tiny_logits_fn
from workers.trainer.model import build_tiny_model
from workers.trainer.spec import parse_spec
from workers.trainer.tiny_hf import build_tiny_hf
from workers.trainer.tokenizer import ByteTokenizer, HFTokenizer

CPU = torch.device("cpu")
TOK = ByteTokenizer()
TEMPLATE = (
    "{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}"
)


def _model() -> torch.nn.Module:
    return build_tiny_model(TOK.vocab_size, d_model=32, n_layers=2, n_heads=4, max_len=256, seed=3)


def _loss(model: torch.nn.Module, rows: list[Row], *, agg: str = "token_mean") -> tuple[Any, torch.Tensor]:
    """The trainer's update loss over rows (_micro_loss's steps: log-probs, masks, weights, GRPO)."""
    logp, mask, _ = completion_logprobs(
        tiny_logits_fn(model, hf=False),
        [r.prompt for r in rows],
        [r.completion for r in rows],
        pad_id=TOK.pad_id,
        temperature=1.0,
        device=CPU,
    )
    logp.retain_grad()
    mask = apply_loss_masks(mask, [r.loss_mask for r in rows])
    old = torch.zeros_like(logp)
    for i, r in enumerate(rows):
        old[i, : len(r.old_logprobs)] = torch.tensor(r.old_logprobs)
    tokens, sequences = loss_rows(rows)
    weights = token_weights(mask, agg=agg, tokens=tokens, sequences=sequences, max_new_tokens=16)
    out = grpo_loss(logp, old, torch.tensor([r.advantage for r in rows]), mask, clip_eps=0.2, weights=weights)
    return out, logp


def _on_policy(model: torch.nn.Module, prompt: list[int], rest: list[int]) -> list[float]:
    with torch.no_grad():
        logp, _, _ = completion_logprobs(
            tiny_logits_fn(model, hf=False), [prompt], [rest], pad_id=TOK.pad_id, temperature=1.0, device=CPU
        )
    return [float(x) for x in logp[0, : len(rest)]]


def test_observation_tokens_get_zero_gradient_and_each_action_token_its_hand_computed_share():
    # given an episode: opening, action 1, observation, action 2 — sampled by the policy itself (ratio 1)
    model = _model()
    row = EpisodeRow(TOK.encode("Fix it.\nAction: ", bos=True))
    row.add(TOK.encode('{"tool": "view"}'), model=True)
    row.add(TOK.encode("\nObservation:\nx = 1\nAction: "), model=False)
    row.add(TOK.encode('{"tool": "submit"}'), model=True)
    prompt, completion, _, mask = training_row(row.prompt, row.rest, row.mask, [0.0] * len(row.rest))
    old = _on_policy(model, prompt, completion)
    advantage = 0.8
    episode = Row(prompt, completion, old, advantage, True, tuple(mask))

    # when the trainer's loss (token_mean) is taken and differentiated
    out, logp = _loss(model, [episode])
    out.loss.backward()

    # then only the 32 action tokens count: the loss is -A (ratio 1) and d loss / d log π is -A / 32 on
    # each action token and exactly 0 on the opening and the observation
    n_actions = len('{"tool": "view"}') + len('{"tool": "submit"}')
    assert out.n_tokens == n_actions == sum(mask) == loss_rows([episode])[0]
    assert float(out.loss.detach()) == pytest.approx(-advantage, abs=1e-6)
    grad = logp.grad[0, : len(completion)]
    on = torch.tensor(mask)
    assert torch.all(grad[~on] == 0.0)
    assert torch.allclose(grad[on], torch.full((n_actions,), -advantage / n_actions), atol=1e-7)


def test_a_one_turn_episode_without_observations_has_the_single_turn_loss_and_gradient():
    # given one action after the opening: as an episode row, and as today's single-turn row
    prompt = TOK.encode("def f():\n", bos=True)
    action = TOK.encode("    return 1\n")
    model = _model()
    old = _on_policy(model, prompt, action)
    old_noisy = [x + 0.05 * (i % 3 - 1) for i, x in enumerate(old)]  # off-policy: ratios away from 1
    single = Row(prompt, action, old_noisy, -1.3)
    p, c, o, m = training_row(prompt, action, [True] * len(action), old_noisy)
    episode = Row(p, c, o, -1.3, True, tuple(m))

    for agg in ("token_mean", "seq_mean"):
        # when both take the trainer's loss
        a, _ = _loss(model, [single], agg=agg)
        model.zero_grad()
        a.loss.backward()
        grads_single = [q.grad.clone() for q in model.parameters()]
        b, _ = _loss(model, [episode], agg=agg)
        model.zero_grad()
        b.loss.backward()

        # then the loss and every parameter's gradient are the same
        assert float(a.loss.detach()) == pytest.approx(float(b.loss.detach()), rel=1e-5)
        assert a.n_tokens == b.n_tokens == len(action)
        for g1, q in zip(grads_single, model.parameters(), strict=True):
            assert torch.allclose(g1, q.grad, atol=1e-6)


def test_the_base_transcript_is_the_opening_then_one_json_line_per_turn():
    t = BaseTranscript(TOK, bos=True)
    row = EpisodeRow(t.opening("Fix the bug.\nTools: ..."))
    row.add(TOK.encode('{"tool": "view", "args": {}}'), model=True)  # a sampled turn: cut at the newline
    row.add(t.observation("no such file", ended=False), model=False)
    row.add(t.action_target('{"tool": "submit", "args": {}}'), model=True)  # an SFT lesson: newline kept

    text = TOK.decode(row.context)
    assert text == (
        "Fix the bug.\nTools: ...\n\nAnswer each turn with one JSON action on a single line, and nothing "
        'else.\n\nAction: {"tool": "view", "args": {}}\nObservation:\nno such file\n\nAction: '
        '{"tool": "submit", "args": {}}\n'
    )
    assert t.stops == ("\n",)
    assert t.observation("x", ended=True) == TOK.encode("Observation:\nx\n\nAction: ")


@pytest.fixture(scope="module")
def chat_tok(tmp_path_factory: pytest.TempPathFactory) -> HFTokenizer:
    path = build_tiny_hf(tmp_path_factory.mktemp("chat"), chat_template=TEMPLATE)
    return HFTokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))


def test_the_chat_transcript_appends_exactly_what_the_template_renders_for_the_whole_conversation(chat_tok):
    # given a chat model's episode: a sampled turn that ended at its end-of-turn token, an observation,
    # and a second turn
    t = ChatTranscript(chat_tok, chat_tok, "<|eos|>")
    opening = t.opening("Fix the bug.")
    action = chat_tok.encode('{"tool": "view"}', eos=True)
    row = EpisodeRow(opening)
    row.add(action, model=True)
    row.add(t.observation("x = 1", ended=True), model=False)
    row.add(t.action_target('{"tool": "submit"}'), model=True)

    # then the tokens read as the template's rendering of the same conversation
    rendered = chat_tok.apply_chat_template(
        [
            {
                "role": "user",
                "content": "Fix the bug.\n\nAnswer each turn with one JSON action and nothing else.",
            },
            {"role": "assistant", "content": '{"tool": "view"}'},
            {"role": "user", "content": "x = 1"},
            {"role": "assistant", "content": '{"tool": "submit"}'},
        ],
        tokenize=False,
    )
    assert chat_tok.tok.decode(row.context) == rendered.rstrip("\n")
    # and the mask covers the two actions and their end-of-turn tokens only
    model_text = chat_tok.tok.decode([i for i, m in zip(row.rest, row.mask, strict=True) if m])
    assert model_text == '{"tool": "view"}<|eos|>{"tool": "submit"}<|eos|>'
    # a turn cut short (no end token sampled) gets the template's closing from the observation
    assert chat_tok.tok.decode(t.observation("y", ended=False)).startswith("<|eos|>\n<|bos|>user\ny")


def _snapshot() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"def one():\n    return 2\n"
        info = tarfile.TarInfo("pkg.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _repo_spec(**repo: Any) -> dict[str, Any]:
    snap = _snapshot()
    sha = hashlib.sha256(snap).hexdigest()
    item = {
        "task_id": "triad/pkg-1",
        "kind": "repo",
        "prompt": "one() returns 2, not 1.",
        "entry_point": "",
        "tests": "",
        "solution": "--- a/pkg.py\n+++ b/pkg.py\n@@ -1,2 +1,2 @@\n def one():\n"
        "-    return 2\n+    return 1\n",
        "repo": {
            "FAIL_TO_PASS": ["tests.test_pkg.T.test_one"],
            "PASS_TO_PASS": [],
            "runner": "unittest",
            "test_patch": "",
            "repo": "triad/pkg",
            "snapshot_sha256": sha,
        }
        | repo,
    }
    return {"run_id": 1, "problems": [item], "snapshots": {sha: base64.b64encode(snap).decode()}}


def test_the_spec_builds_a_repo_task_from_the_problem_item_and_the_shared_snapshots():
    spec = parse_spec(_repo_spec())
    [p] = spec.problems
    assert p.is_repo and p.repo is not None
    assert p.repo.task_id == "triad/pkg-1" and p.repo.statement == p.prompt
    assert p.repo.fail_to_pass == ("tests.test_pkg.T.test_one",) and p.repo.snapshot == _snapshot()
    assert p.repo.patch == p.solution and p.repo.repo == "triad/pkg"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"FAIL_TO_PASS": []}, r"problems\[0\]\.repo\.FAIL_TO_PASS: must name at least one test"),
        ({"FAIL_TO_PASS": "x"}, r"problems\[0\]\.repo\.FAIL_TO_PASS: must be a list of test ids"),
        ({"runner": "nose"}, r"problems\[0\]\.repo\.runner: must be one of unittest, pytest"),
        ({"snapshot_sha256": "0" * 64}, r"problems\[0\]\.repo\.snapshot_sha256: no snapshot"),
    ],
)
def test_a_bad_repo_item_is_refused_naming_its_field(change: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        parse_spec(_repo_spec(**change))


def test_a_snapshot_that_is_not_what_its_key_says_is_refused(tmp_path: Path):
    raw = _repo_spec()
    sha = next(iter(raw["snapshots"]))
    raw["snapshots"][sha] = base64.b64encode(b"\x1f\x8bother").decode()
    with pytest.raises(ValueError, match=rf"snapshots\.{sha}: the data's sha256 is"):
        parse_spec(raw)


def test_the_sft_row_of_a_repo_task_is_its_reference_trajectory_replayed_with_the_real_observations():
    from tests.workers.repo.sample_repo import sample_task
    from workers.repo.env import EpisodeLimits
    from workers.repo.reference import reference_actions
    from workers.trainer.episodes import reference_row

    task = sample_task()
    t = BaseTranscript(TOK, bos=True)

    # (with the run's turn limit below the trajectory's length: the lesson is still whole)
    row = reference_row(task, transcript=t, limits=EpisodeLimits(max_turns=1))

    # the lesson is exactly the reference actions, each ended by its newline
    actions = reference_actions(task)
    lesson = TOK.decode([i for i, m in zip(row.rest, row.mask, strict=True) if m])
    assert lesson == "".join(a + "\n" for a in actions)
    # and between them the environment's own observations, masked out: the edit's, then the test run's
    context = TOK.decode([i for i, m in zip(row.rest, row.mask, strict=True) if not m])
    assert context.count("Observation:\n") == len(actions) - 1  # the submit ends it: nothing after
    edit, tests = context.split("Observation:\n")[1:]
    assert edit.startswith("replaced in calc/ops.py")
    # the test run's summary: the fixed test of the snapshot passes (the one the test patch adds is
    # not in the workspace during an episode)
    assert "passed" in tests.splitlines()[0]
    assert "tests.test_ops.TestOps.test_clamp_above: " not in tests


def _result(outcome: str, **changes: Any):
    from workers.repo.env import EpisodeResult

    fields: dict[str, Any] = {
        "task_id": "t",
        "outcome": outcome,
        "reward": 1.0 if outcome == "resolved" else 0.0,
        "diff": f"diff of {outcome}",
        "turns": 3,
        "invalid_actions": 1,
        "test_files_edited": False,
        "fail_to_pass": {"a": "passed" if outcome == "resolved" else "failed"},
        "pass_to_pass": {"b": "passed"},
        "tests_before": {"a": "failed", "b": "passed"},
        "trajectory": [{"action": "{}", "observation": "ok", "valid": True}],
        "duration_ms": 2000,
    }
    return EpisodeResult(**(fields | changes))


def test_repo_metrics_and_generations_count_every_episode_and_post_each_test_editing_one_flagged():
    from workers.spec import REPO_OUTCOMES
    from workers.trainer.episodes import Episode
    from workers.trainer.metrics import LocalStats, generations_to_post, merge_metrics
    from workers.trainer.rewards import episode_score
    from workers.trainer.spec import Problem

    problem = Problem(task_id="t", prompt="fix", entry_point="", tests="", kind="repo")
    results = [
        _result("resolved", turns=4, invalid_actions=0),
        _result("tests_fail", test_files_edited=True, duration_ms=4000),
        _result("turn_limit", turns=5, invalid_actions=3),
        _result("sandbox_error"),
    ]
    st = LocalStats(keep="capped")
    for r in results:
        episode = Episode(
            text=r.diff,
            token_ids=(1, 2, 3, 4, 5),
            logprobs=(0.0,) * 5,
            finish_reason="stop",
            prompt_ids=(9, 9),
            loss_mask=(True, True, False, False, True),
            result=r,
        )
        st.record(problem, episode, episode_score(r))

    m = merge_metrics([st], lr=0.0, grad_norm=0.0, step_s=1.0)

    assert m["repo/resolve_rate"] == m["pass_rate"] == 0.25
    assert {o: m[f"repo/outcome/{o}"] for o in REPO_OUTCOMES if m[f"repo/outcome/{o}"]} == {
        "resolved": 0.25,
        "tests_fail": 0.25,
        "turn_limit": 0.25,
        "sandbox_error": 0.25,
    }
    assert m["repo/turns_mean"] == (4 + 3 + 5 + 3) / 4
    assert m["repo/invalid_action_frac"] == (0 + 1 + 3 + 1) / (4 + 3 + 5 + 3)
    assert m["repo/test_edit_frac"] == 0.25 and m["review/flagged_frac"] == 0.25
    assert m["repo/episode_s_mean"] == (2 + 4 + 2 + 2) / 4
    assert m["length/mean"] == 3.0  # the model's own tokens, not the observations
    assert m["error/sandbox_error"] == 0.25 and m["reward/mean"] == pytest.approx(1 / 3)  # valid only
    posted = generations_to_post([st])
    edited = [s for s in posted if s.repo and s.repo["test_files_edited"]]
    assert len(edited) == 1 and edited in [st.flagged_samples]
    assert {s.completion for s in posted} == {r.diff for r in results}
    assert all(s.repo and s.repo["outcome"] == s.completion.removeprefix("diff of ") for s in posted)


def test_episodes_that_cannot_start_leave_no_workspace_behind(monkeypatch, tmp_path: Path):
    # given a group of a good task and a task whose snapshot is gzip but not a tar archive
    import dataclasses
    import gzip
    import tempfile

    from tests.workers.repo.sample_repo import sample_task
    from workers.repo.env import EpisodeLimits
    from workers.repo.workspace import SnapshotError
    from workers.trainer.episodes import EpisodeSettings, run_episodes
    from workers.trainer.rollout import TorchEngine

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    good = sample_task()
    broken = dataclasses.replace(good, task_id="broken", snapshot=gzip.compress(b"not a tar archive"))
    model = _model()
    engine = TorchEngine(tiny_logits_fn(model, hf=False), TOK, device=CPU, max_len=256)

    # when their episodes are started together
    with pytest.raises(SnapshotError):
        run_episodes(
            [good, broken],
            2,
            engine=engine,
            transcript=BaseTranscript(TOK, bos=True),
            settings=EpisodeSettings(EpisodeLimits(), max_new_tokens=16, context=256, temperature=1.0),
            seed=0,
        )

    # then the good task's workspaces, made first, are removed as well
    assert not list(tmp_path.glob("triad-workspace-*"))
