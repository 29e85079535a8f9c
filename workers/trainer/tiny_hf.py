"""A small Llama-architecture model with random weights and a byte-level BPE tokenizer trained on the
bundled problems, saved as a real Hugging Face directory — nothing is downloaded. The GPU bench trains
it, and tests register and load it as any other Hugging Face model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEMO_PROBLEMS = Path(__file__).resolve().parents[2] / "datasets_app" / "data" / "demo_problems.jsonl"
SPECIAL_TOKENS = ["<|bos|>", "<|eos|>", "<|pad|>"]

# A few hundred thousand parameters on the CPU, so tests stay fast; about 30 M on a GPU; about 104 M for
# the GPU bench's figure at the size the issue names (at least 100 M).
SIZES: dict[str, dict[str, int]] = {
    "cpu": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "gpu": {
        "hidden_size": 512,
        "intermediate_size": 1408,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
    },
    "gpu-100m": {
        "hidden_size": 768,
        "intermediate_size": 2048,
        "num_hidden_layers": 16,
        "num_attention_heads": 12,
        "num_key_value_heads": 4,
    },
}


def build_tiny_hf(
    out_dir: Path,
    *,
    size: str = "cpu",
    vocab_size: int = 2048,
    max_len: int = 1024,
    seed: int = 0,
    chat_template: str | None = None,
) -> Path:
    """Write config.json, model.safetensors and the tokenizer files to `out_dir`; return it.

    `chat_template`: a Jinja template saved with the tokenizer, for tests of instruct models."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    problems = [json.loads(line) for line in DEMO_PROBLEMS.read_text().splitlines() if line.strip()]
    corpus = [p["prompt"] + p["canonical_solution"] + p["test"] for p in problems] * 20
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    bos, eos, pad = SPECIAL_TOKENS
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad)  # type: ignore[no-untyped-call]
    if chat_template is not None:
        fast.chat_template = chat_template
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    dims: dict[str, Any] = SIZES[size]
    config = LlamaConfig(
        vocab_size=len(fast),
        max_position_embeddings=max_len,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        **dims,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    return out_dir
