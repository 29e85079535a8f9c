"""The trainer's tokenizers, both with the rollout Tokenizer protocol: a byte-level one built in code
for the tiny model, and an adapter for a transformers tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ByteTokenizer:
    """Ids 0..255 are bytes, then BOS, EOS, PAD."""

    BOS = 256
    EOS = 257
    PAD = 258
    vocab_size = 259

    @property
    def bos_id(self) -> int:
        return self.BOS

    @property
    def eos_id(self) -> int:
        return self.EOS

    @property
    def pad_id(self) -> int:
        return self.PAD

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = list(text.encode("utf-8"))
        if bos:
            ids.insert(0, self.BOS)
        if eos:
            ids.append(self.EOS)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        data = bytes(i for i in ids if 0 <= i < 256)
        return data.decode("utf-8", errors="replace")


class HFTokenizer:
    """Adapts a transformers tokenizer to the rollout Tokenizer protocol."""

    def __init__(self, tok: Any) -> None:
        self.tok = tok
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        # Llama's tokenizers start every text with BOS, GPT-2's and Qwen's with nothing: a prompt asked
        # to begin with BOS gets one only where the tokenizer adds it by default.
        bos_id = tok.bos_token_id
        self.adds_bos = bos_id is not None and bos_id in tok.encode("", add_special_tokens=True)

    @property
    def eos_id(self) -> int:
        return int(self.tok.eos_token_id)

    @property
    def pad_id(self) -> int:
        return int(self.tok.pad_token_id)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids: list[int] = list(self.tok.encode(text, add_special_tokens=False))
        if bos and self.adds_bos:
            ids.insert(0, int(self.tok.bos_token_id))
        if eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        text: str = self.tok.decode(list(ids), skip_special_tokens=True)
        return text

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tok, "chat_template", None))

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any:
        """The wrapped tokenizer's chat template (an instruct model's prompts are rendered by it)."""
        return self.tok.apply_chat_template(conversation, **kwargs)
