"""Tokenizer, tiny model, rollout engine and spec parsing."""

from __future__ import annotations

import copy

import pytest
import torch

from workers.trainer.logprobs import completion_logprobs
from workers.trainer.model import build_tiny_model
from workers.trainer.rollout import TorchEngine, cut_at_stop
from workers.trainer.spec import parse_spec
from workers.trainer.tokenizer import ByteTokenizer

SPEC = {
    "run_id": 1,
    "name": "demo",
    "control_url": "http://127.0.0.1:8000",
    "model": {"kind": "tiny", "path": None, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_len": 128},
    "train": {"steps": 2, "group_size": 4},
    "problems": [
        {"task_id": "p/0", "prompt": "def f(x):\n", "entry_point": "f", "tests": "def check(c):\n    pass\n"}
    ],
}


def _model():
    return build_tiny_model(ByteTokenizer.vocab_size, d_model=32, n_layers=2, n_heads=4, max_len=128, seed=0)


def test_tokenizer_round_trips_non_ascii():
    tok = ByteTokenizer()
    text = "def café(x):\n    return 'λ→✓' # 日本"
    ids = tok.encode(text, bos=True, eos=True)
    assert ids[0] == tok.BOS and ids[-1] == tok.EOS
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_tiny_model_gives_logits_per_position():
    logits = _model()(torch.randint(0, 256, (3, 10)))
    assert logits.shape == (3, 10, ByteTokenizer.vocab_size)


def test_a_later_token_does_not_change_earlier_logits():
    model = _model().eval()
    ids = torch.randint(0, 256, (1, 12))
    changed = ids.clone()
    changed[0, 8] = (changed[0, 8] + 1) % 256
    a, b = model(ids), model(changed)
    assert torch.allclose(a[0, :8], b[0, :8], atol=1e-6)
    assert not torch.allclose(a[0, 8:], b[0, 8:])


def test_left_padding_does_not_change_the_logits_of_real_tokens():
    model = _model().eval()
    ids = torch.randint(0, 256, (1, 6))
    padded = torch.cat([torch.full((1, 3), ByteTokenizer.PAD), ids], dim=1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 6, dtype=torch.bool)], dim=1)
    assert torch.allclose(model(ids)[0], model(padded, mask)[0, 3:], atol=1e-5)


def test_model_is_the_same_for_the_same_seed():
    a, b = _model(), _model()
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_torch_engine_returns_n_completions_whose_logprobs_match_a_rescoring():
    tok = ByteTokenizer()
    model = _model().eval()
    fn = lambda ids, mask: model(ids, mask)  # noqa: E731
    engine = TorchEngine(fn, tok, device=torch.device("cpu"), max_len=128)
    groups = engine.generate(["def f(x):\n", "x = "], n=3, max_new_tokens=10, temperature=1.0, seed=1)

    assert [len(g) for g in groups] == [3, 3]
    c = groups[0][0]
    assert len(c.token_ids) == len(c.logprobs) <= 10
    with torch.no_grad():
        logp, _, _ = completion_logprobs(
            fn,
            [engine.encode_prompt("def f(x):\n", 10)],
            [list(c.token_ids)],
            pad_id=tok.PAD,
            temperature=1.0,
            device=torch.device("cpu"),
        )
    assert torch.allclose(logp[0, : len(c.logprobs)], torch.tensor(c.logprobs), atol=1e-4)
    again = engine.generate(["def f(x):\n", "x = "], n=3, max_new_tokens=10, temperature=1.0, seed=1)
    assert again == groups


def test_stop_strings_cut_run_on_code():
    tok = ByteTokenizer()
    ids = tok.encode("    return x\n\ndef g():\n")
    keep, text = cut_at_stop(tok, ids)
    assert text == "    return x\n"
    assert keep == len(tok.encode(text))
    assert cut_at_stop(tok, tok.encode("    return x\n")) is None


def test_spec_parses_with_defaults():
    spec = parse_spec(SPEC)
    assert spec.train.group_size == 4
    assert spec.train.clip_eps == 0.2 and spec.train.zero_stage == 0
    assert spec.resources.procs_per_node == 1
    assert spec.problems[0].solution == ""


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("train", "group_size"), 1, "train.group_size: must be an integer ≥ 2"),
        (("train", "lr"), "fast", "train.lr: must be a number"),
        (("train", "precision"), "fp8", "train.precision"),
        (("model", "kind"), "llama", "model.kind"),
        (("model", "n_heads"), 3, "model.n_heads"),
        (("resources", "gpu"), "yes", "resources.gpu"),
        (("sandbox", "timeout_s"), 0, "sandbox.timeout_s"),
    ],
)
def test_spec_errors_name_the_field(path, value, message):
    raw = copy.deepcopy(SPEC)
    raw.setdefault(path[0], {})[path[1]] = value
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        parse_spec(raw)


def test_spec_problem_errors_name_the_index():
    raw = copy.deepcopy(SPEC)
    del raw["problems"][0]["entry_point"]
    with pytest.raises(ValueError, match=r"problems\[0\]\.entry_point"):
        parse_spec(raw)
