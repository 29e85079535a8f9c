"""The standalone evaluation (python -m workers.trainer.evaluate): the tiny model on CPU, the real
sandbox, and a real DeepSpeed checkpoint's weights (tests/workers/ds_checkpoint.py).

The problems are made so that the verdict does not depend on what the untrained model writes: the
prompt is a whole program ending in a comment, and the completion is cut at the first line break
(the dataset's stop strings), so it stays in the comment. "T/yes"'s tests pass on that program,
"T/no"'s fail on it: every completion of T/yes passes and none of T/no's does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM

from workers.trainer.evaluate import load_model
from workers.trainer.spec import parse_spec

ROOT = Path(__file__).resolve().parents[3]
STOPS = ["\n", "\r", "\x00"]  # Python ends a comment at \n or \r and refuses a NUL byte
PROBLEMS = [
    {
        "task_id": "T/yes",
        "prompt": "def one():\n    return 1\n#",
        "entry_point": "one",
        "tests": "def check(candidate):\n    assert candidate() == 1\n",
        "stop": STOPS,
    },
    {
        "task_id": "T/no",
        "prompt": "def two():\n    return 1\n#",
        "entry_point": "two",
        "tests": "def check(candidate):\n    assert candidate() == 2\n",
        "stop": STOPS,
    },
]
TINY = {"kind": "tiny", "d_model": 32, "n_layers": 2, "n_heads": 4, "max_len": 128}


def _spec(tmp_path: Path, model: dict[str, Any], **train: Any) -> Path:
    spec = {
        "run_id": 5,
        "model": model,
        "train": {"max_new_tokens": 8, "eval_samples": 4, "eval_k": 2, "seed": 0, **train},
        "resources": {"gpu": False},
        "sandbox": {"timeout_s": 5.0},
        "problems": PROBLEMS,
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.trainer.evaluate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tiny_model_is_evaluated_by_the_codex_protocol_per_problem_and_in_total(tmp_path: Path):
    # given a spec of the tiny model and the two problems, with eval_samples 4 and eval_k 2
    spec = _spec(tmp_path, TINY)
    # when it is evaluated on the node, without training
    done = _evaluate("--spec", str(spec), "--out", str(tmp_path / "result.json"))
    # then each problem has its greedy verdict (pass@1) and its 4 samples at T = 0.8 (pass@2)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["protocol"], result["greedy"], result["samples"], result["temperature"]) == (
        "codex",
        True,
        4,
        0.8,
    )
    assert result["evaluated"] == "problems" and result["checkpoint"] is None
    yes, no = result["problems"]
    assert yes == {
        "task_id": "T/yes",
        "n": 4,
        "passed": 4,
        "greedy_passed": True,
        "sandbox_errors": 0,
        "pass@1": 1.0,
        "pass@2": 1.0,
        "unscored": False,
    }
    assert (no["task_id"], no["n"], no["passed"], no["greedy_passed"], no["pass@1"], no["pass@2"]) == (
        "T/no",
        4,
        0,
        False,
        0.0,
        0.0,
    )
    # and the totals carry the trainer's metric names: (1 + 0) / 2 for both
    assert result["totals"] == {
        "eval/pass@1": 0.5,
        "eval/pass@2": 0.5,
        "eval/problems": 2.0,
        "eval/problems_unscored": 0.0,
        "eval/n_min": 4.0,
    }
    assert json.loads(done.stdout.strip().splitlines()[-1]) == result["totals"]


def test_the_sampled_protocol_takes_both_estimates_from_the_same_samples(tmp_path: Path):
    spec = _spec(tmp_path, TINY, eval_protocol="sampled", eval_samples=3, eval_k=3, temperature=0.9)
    done = _evaluate("--spec", str(spec), "--out", str(tmp_path / "result.json"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["greedy"], result["samples"], result["temperature"]) == (False, 3, 0.9)
    assert [(p["n"], p["passed"], p["greedy_passed"]) for p in result["problems"]] == [
        (3, 3, None),
        (3, 0, None),
    ]
    assert result["totals"]["eval/pass@3"] == 0.5 and result["totals"]["eval/n_min"] == 3


def test_bad_input_is_refused_naming_what_is_wrong(tmp_path: Path):
    spec = _spec(tmp_path, TINY)
    no_set = _evaluate("--spec", str(spec), "--on", "eval_set", "--out", str(tmp_path / "r.json"))
    assert no_set.returncode == 2 and "train.eval_set is none" in no_set.stderr
    (tmp_path / "empty").mkdir()
    no_ckpt = _evaluate(
        "--spec", str(spec), "--checkpoint", str(tmp_path / "empty"), "--out", str(tmp_path / "r.json")
    )
    assert no_ckpt.returncode == 2 and "no checkpoint there" in no_ckpt.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.fixture(scope="module")
def checkpointed(tiny_hf_dir, tmp_path_factory) -> Path:
    """A run's work dir holding a real ZeRO-0 checkpoint of the tiny HF model, one step away from it."""
    workdir = tmp_path_factory.mktemp("run")
    done = subprocess.run(
        [sys.executable, "-m", "tests.workers.ds_checkpoint", str(tiny_hf_dir), str(workdir), "0", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


def test_a_checkpoint_given_is_the_weights_evaluated(checkpointed: Path, tiny_hf_dir, tmp_path: Path):
    model_section = {"kind": "hf", "path": str(tiny_hf_dir), "dtype": "fp32"}
    spec = parse_spec(json.loads(_spec(tmp_path, model_section).read_text()))
    trained = torch.load(checkpointed / "trained.pt")
    base = AutoModelForCausalLM.from_pretrained(tiny_hf_dir, local_files_only=True, dtype=torch.float32)

    # the checkpoint root, its attempt dir and the checkpoint dir itself all name the same weights
    for where in ("checkpoints", "checkpoints/attempt-1", "checkpoints/attempt-1/step3"):
        model, _, _ = load_model(spec, checkpointed / where, torch.device("cpu"))
        params = dict(model.named_parameters())
        assert set(params) == set(trained)
        for name, value in trained.items():
            assert torch.equal(params[name].detach().float(), value), (where, name)
    assert any(not torch.equal(p, trained[n]) for n, p in base.named_parameters())  # not the base's

    done = _evaluate(
        "--spec",
        str(tmp_path / "spec.json"),
        "--checkpoint",
        str(checkpointed / "checkpoints"),
        "--out",
        str(tmp_path / "result.json"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["checkpoint"] == str(checkpointed / "checkpoints")
    assert [(p["task_id"], p["passed"], p["greedy_passed"]) for p in result["problems"]] == [
        ("T/yes", 4, True),
        ("T/no", 0, False),
    ]
