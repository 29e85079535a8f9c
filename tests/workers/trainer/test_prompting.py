"""Prompts and answers: chat templates, the code taken from an answer, stop strings, the spec's model
fields, and a tiny instruct model trained through the real trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.workers.supervised import supervise
from tests.workers.test_launcher import _spec
from workers.trainer.engine import load_policy, local_source
from workers.trainer.logprobs import tiny_logits_fn
from workers.trainer.model import build_tiny_model
from workers.trainer.prompting import (
    INSTRUCTION,
    STOP_STRINGS,
    build_prompt,
    extract_code,
    prompt_bos,
    scoring_inputs,
    sft_completion,
    stop_strings,
)
from workers.trainer.rewards import score_completions
from workers.trainer.rollout import TorchEngine
from workers.trainer.spec import ModelSpec, Problem, SandboxSpec, parse_spec
from workers.trainer.tiny_hf import build_tiny_hf
from workers.trainer.tokenizer import ByteTokenizer, HFTokenizer

# A minimal chat template in the shape instruct models ship: turns between the tokenizer's own
# special tokens, and the assistant's turn opened by add_generation_prompt.
TEMPLATE = (
    "{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}"
)
ADD = Problem(
    task_id="T/add",
    prompt='from typing import List\n\n\ndef add(a, b):\n    """Sum of a and b."""\n',
    entry_point="add",
    tests="def check(candidate):\n    assert candidate(1, 2) == 3\n",
    solution="    return a + b\n",
)
FENCED = "```python\ndef add(a, b):\n    return a + b\n```"


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_hf(tmp_path_factory.mktemp("chat-model"), chat_template=TEMPLATE)


@pytest.fixture(scope="module")
def chat_tokenizer(chat_model_dir: Path) -> HFTokenizer:
    from transformers import AutoTokenizer

    return HFTokenizer(AutoTokenizer.from_pretrained(chat_model_dir, local_files_only=True))


# --------------------------------------------------------------------------- prompts
def test_a_base_models_prompt_is_the_problems_prompt():
    assert build_prompt(ADD, chat=False, tokenizer=None) == ADD.prompt


def test_a_chat_models_prompt_is_a_user_turn_through_its_template_ending_where_the_answer_begins(
    chat_tokenizer: HFTokenizer,
):
    prompt = build_prompt(ADD, chat=True, tokenizer=chat_tokenizer)

    assert prompt.startswith("<|bos|>user\n" + INSTRUCTION)
    assert ADD.prompt.rstrip() in prompt
    assert prompt.endswith("<|eos|>\n<|bos|>assistant\n")
    # The template's markers are the tokenizer's special tokens, not text cut into pieces.
    ids = chat_tokenizer.encode(prompt)
    assert ids[0] == chat_tokenizer.tok.bos_token_id
    assert ids.count(chat_tokenizer.eos_id) == 1


def test_a_task_in_words_is_asked_as_it_is_naming_the_function(chat_tokenizer: HFTokenizer):
    words = Problem("T/w", "Write a function that sums two numbers.", "total", "")
    prompt = build_prompt(words, chat=True, tokenizer=chat_tokenizer)
    assert prompt.startswith("<|bos|>user\nWrite a function that sums two numbers.\n\n")
    assert "named `total`" in prompt and INSTRUCTION not in prompt


def test_a_chat_prompt_needs_a_tokenizer():
    with pytest.raises(ValueError, match="chat template"):
        build_prompt(ADD, chat=True, tokenizer=None)


def test_a_continuation_starts_with_bos_only_where_the_tokenizer_adds_one(chat_model_dir: Path):
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    plain = HFTokenizer(AutoTokenizer.from_pretrained(chat_model_dir, local_files_only=True))
    llama_like = AutoTokenizer.from_pretrained(chat_model_dir, local_files_only=True)
    bos_id = llama_like.bos_token_id
    llama_like._tokenizer.post_processor = TemplateProcessing(
        single="<|bos|> $A", special_tokens=[("<|bos|>", bos_id)]
    )
    with_bos = HFTokenizer(llama_like)

    assert not plain.adds_bos and plain.encode("x = 1", bos=True) == plain.encode("x = 1")
    assert with_bos.adds_bos and with_bos.encode("x = 1", bos=True) == [bos_id, *plain.encode("x = 1")]
    assert with_bos.encode("x = 1") == plain.encode("x = 1")
    # A chat prompt's template writes its own BOS; a continuation asks for the tokenizer's.
    assert prompt_bos(ModelSpec(kind="hf", path="m", chat=True)) is False
    assert prompt_bos(ModelSpec(kind="hf", path="m")) is True and prompt_bos(ModelSpec()) is True


# --------------------------------------------------------------------------- answers
def test_the_fenced_block_is_taken_from_prose_around_it():
    answer = f"Here is the function:\n\n{FENCED}\n\nIt adds the two numbers."
    assert extract_code(answer, chat=True, problem=ADD) == "def add(a, b):\n    return a + b\n"


def test_of_two_blocks_the_one_defining_the_entry_point_is_run():
    answer = f"First import:\n```python\nimport math\n```\nThen:\n```\n{FENCED[10:-3]}```\nDone."
    assert extract_code(answer, chat=True, problem=ADD) == "def add(a, b):\n    return a + b\n"


def test_a_block_of_another_language_comes_after_python_blocks():
    answer = "```bash\npip install nothing\n```\n```python\nx = 1\n```"
    assert extract_code(answer, chat=True, problem=ADD) == ADD.prompt + "x = 1\n"


def test_an_answer_without_a_block_is_the_code():
    answer = "def add(a, b):\n    return a + b\n"
    assert extract_code(answer, chat=True, problem=ADD) == answer


def test_a_block_without_the_entry_point_is_the_body_after_the_prompt():
    answer = "Just this:\n```python\n    return a + b\n```"
    assert extract_code(answer, chat=True, problem=ADD) == ADD.prompt + "    return a + b\n"


def test_an_unclosed_block_runs_to_the_end_of_the_answer():
    answer = "Sure.\n```python\ndef add(a, b):\n    return a +"
    assert extract_code(answer, chat=True, problem=ADD) == "def add(a, b):\n    return a +"


def test_a_closing_fence_cut_short_is_not_code():
    answer = "```python\ndef add(a, b):\n    return a + b\n``"
    assert extract_code(answer, chat=True, problem=ADD) == "def add(a, b):\n    return a + b\n"


def test_a_base_models_answer_continues_the_prompt():
    assert extract_code("    return a + b\n", chat=False, problem=ADD) == ADD.prompt + "    return a + b\n"


def test_scoring_inputs_leave_a_base_models_texts_alone():
    problem, texts = scoring_inputs(ADD, ["    return a + b\n"], chat=False)
    assert problem is ADD and texts == ["    return a + b\n"]


def test_a_chat_answer_with_prose_and_a_correct_block_passes_and_a_wrong_one_fails():
    answers = [
        f"Sure! Here it is:\n\n{FENCED}\n\nThis returns the sum.",
        "```python\ndef add(a, b):\n    return a - b\n```",
        "I cannot help with that.",
    ]
    problem, programs = scoring_inputs(ADD, answers, chat=True)
    # Run as extracted: the answer's own def, not glued after the prompt's.
    assert problem.prompt == "" and programs[0] == "def add(a, b):\n    return a + b\n"
    assert problem.solution == ADD.prompt + ADD.solution  # the reference, whole, for efficiency/style

    [scores] = score_completions(
        [problem], [programs], sandbox=SandboxSpec(timeout_s=5.0), partial_credit=False
    )

    assert [s.passed for s in scores] == [True, False, False]
    assert all(s.valid for s in scores)


def test_the_chat_warm_up_imitates_the_reference_as_a_fenced_answer():
    target = sft_completion(ADD, ADD.solution, chat=True)
    assert target == "```python\n" + (ADD.prompt + ADD.solution).rstrip() + "\n```"
    assert extract_code(target, chat=True, problem=ADD) == (ADD.prompt + ADD.solution).rstrip() + "\n"
    assert sft_completion(ADD, ADD.solution, chat=False) == ADD.solution


# --------------------------------------------------------------------------- stop strings
def test_stop_strings_default_to_humaneval_for_continuations_and_none_for_chat():
    assert stop_strings(ADD, ModelSpec()) == STOP_STRINGS
    assert stop_strings(ADD, ModelSpec(kind="hf", path="m")) == STOP_STRINGS
    assert stop_strings(ADD, ModelSpec(kind="hf", path="m", chat=True)) == ()


def test_stop_strings_are_the_datasets_and_the_models_together():
    problem = Problem("T/x", "p", "f", "t", stop=("\n\n\n", "###"))
    model = ModelSpec(kind="hf", path="m", chat=True, stop=("###", "<|end|>"))
    assert stop_strings(problem, model) == ("\n\n\n", "###", "<|end|>")
    assert stop_strings(problem, ModelSpec()) == ("\n\n\n", "###")  # given: no default added


def test_each_prompts_samples_end_at_that_prompts_stop_strings():
    tok = ByteTokenizer()
    model = build_tiny_model(tok.vocab_size, d_model=32, n_layers=1, n_heads=4, max_len=128, seed=0)
    engine = TorchEngine(tiny_logits_fn(model.eval(), hf=False), tok, device=torch.device("cpu"), max_len=128)
    # Any character ends a sample of the first prompt (a lone byte >= 128 decodes to U+FFFD).
    anything = [chr(c) for c in range(128)] + ["\ufffd"]

    first, second = engine.generate(["a", "b"], 4, 12, 1.0, seed=0, stops=[anything, []])

    assert all(c.finish_reason in ("stop", "eos") and c.text == "" for c in first)
    assert any(c.finish_reason == "stop" for c in first)
    assert not any(c.finish_reason == "stop" for c in second)


# --------------------------------------------------------------------------- the spec
def _raw(model: dict[str, object], **problem: object) -> dict[str, object]:
    item = {"task_id": "T/0", "prompt": "def f():\n", "entry_point": "f", "tests": "", **problem}
    return {"run_id": 1, "model": model, "problems": [item]}


def test_the_spec_reads_a_chat_models_fields_and_a_problems_stop_strings():
    raw = _raw(
        {"kind": "hf", "path": "org/m", "tokenizer": "/tok", "chat": True, "dtype": "bf16", "stop": ["###"]},
        stop=["\nclass "],
    )
    spec = parse_spec(raw)
    assert spec.model == ModelSpec(
        kind="hf", path="org/m", tokenizer="/tok", chat=True, dtype="bf16", stop=("###",)
    )
    assert spec.problems[0].stop == ("\nclass ",)


def test_the_model_sections_defaults_are_the_tiny_model_and_the_tokenizer_at_path():
    spec = parse_spec(_raw({"kind": "hf", "path": "/m", "tokenizer": None}))
    assert (spec.model.chat, spec.model.dtype, spec.model.stop) == (False, "fp32", ())
    assert spec.model.tokenizer_path == "/m"
    assert parse_spec(_raw({})).model == ModelSpec()


@pytest.mark.parametrize(
    ("model", "problem", "field"),
    [
        ({"kind": "hf", "path": "/m", "chat": "yes"}, {}, r"model\.chat"),
        ({"kind": "tiny", "chat": True}, {}, r"model\.chat"),
        ({"kind": "hf", "path": "/m", "dtype": "int8"}, {}, r"model\.dtype"),
        ({"kind": "hf", "path": "/m", "tokenizer": 3}, {}, r"model\.tokenizer"),
        ({"kind": "hf", "path": "/m", "stop": "###"}, {}, r"model\.stop"),
        ({"kind": "hf", "path": "/m", "stop": [""]}, {}, r"model\.stop"),
        ({}, {"stop": [1]}, r"problems\[0\]\.stop"),
    ],
)
def test_a_malformed_model_field_is_refused_by_name(model, problem, field):
    with pytest.raises(ValueError, match=field):
        parse_spec(_raw(model, **problem))


# --------------------------------------------------------------------------- loading
def test_a_missing_directory_or_uncached_hub_id_is_refused_saying_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ValueError, match=r"model\.path: .*absent is not a directory on this node"):
        local_source(str(tmp_path / "absent"), "model.path")
    with pytest.raises(ValueError, match=r"model\.tokenizer: nobody/absent-model is neither") as refused:
        local_source("nobody/absent-model", "model.tokenizer")
    assert f"looked in {tmp_path / 'hub'}" in str(refused.value)


def test_a_chat_model_whose_tokenizer_has_no_template_is_refused(tmp_path: Path):
    plain = build_tiny_hf(tmp_path / "plain")
    spec = parse_spec(_raw({"kind": "hf", "path": str(plain), "chat": True}))
    with pytest.raises(ValueError, match=r"model\.chat: .* no chat template"):
        load_policy(spec, torch.device("cpu"))


def test_a_chat_models_tokenizer_can_live_apart_from_its_weights(chat_model_dir: Path, tmp_path: Path):
    spec = parse_spec(
        _raw({"kind": "hf", "path": str(chat_model_dir), "tokenizer": str(chat_model_dir), "chat": True})
    )
    _, tokenizer, max_len = load_policy(spec, torch.device("cpu"))
    assert isinstance(tokenizer, HFTokenizer) and tokenizer.has_chat_template
    assert max_len == 1024


# --------------------------------------------------------------------------- a real run
KEEP = {
    "task_id": "T/keep",
    "prompt": "def keep(x):\n",
    "entry_point": "keep",
    "solution": "    return x\n",
    "tests": "def check(candidate):\n    assert candidate(5) == 5\n",
}


@pytest.mark.e2e  # a real deepspeed run
def test_a_tiny_chat_model_learns_the_fenced_answer_and_its_extracted_code_passes(
    control, chat_model_dir: Path, tmp_path: Path
):
    """The warm-up teaches the fenced answer after the chat prompt; sampled answers then end at EOS
    (no HumanEval stops cut them at "\\ndef "), the code is taken from the fence and passes."""
    spec = _spec(control.url, steps=81)
    spec["model"] = {"kind": "hf", "path": str(chat_model_dir), "chat": True, "dtype": "fp32", "stop": []}
    spec["problems"] = [KEEP, {**KEEP, "task_id": "T/keep-again"}]
    spec["resources"]["procs_per_node"] = 1
    spec["train"].update(
        {
            "sft_warmup_steps": 80,
            "sft_lr": 0.01,
            "temperature": 0.1,
            "lr": 1e-6,
            "prompts_per_step": 1,
            "max_new_tokens": 32,  # the fenced answer is 26 tokens, then EOS
            "eval_every": 80,
            "eval_problems": 1,
            "eval_samples": 4,
            "eval_k": 1,
            "eval_temperature": 0.05,
        }
    )
    control.spec = spec

    final = supervise(control, tmp_path)

    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    metrics = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    generations = control.of_type("generation", "trainer")
    assert generations, "the RL step posts its answers"
    answer = generations[-1]["completion"]
    assert answer.startswith("```python\ndef keep(x):"), answer
    assert metrics[80]["eval/pass@1"] == 1.0, metrics[80]
    assert metrics[80]["pass_rate"] == 1.0, metrics[80]
    assert metrics[80]["length/clipped_frac"] == 0.0  # every answer ended at EOS
