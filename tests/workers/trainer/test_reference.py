"""The pinned KL reference on disk: written once, atomically, checked on load, frozen."""

from __future__ import annotations

import json

import pytest
import torch

from workers.trainer.engine import frozen_copy
from workers.trainer.model import build_tiny_model
from workers.trainer.reference import (
    file_sha256,
    gathered_state_dict,
    load_pin,
    read_pin,
    reference_dir,
    write_pin,
)
from workers.trainer.tokenizer import ByteTokenizer


def _tiny(seed: int = 0) -> torch.nn.Module:
    return build_tiny_model(
        ByteTokenizer.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=32, seed=seed
    )


def test_a_pinned_reference_loads_as_a_frozen_copy_of_the_weights_it_was_pinned_from(tmp_path):
    policy = _tiny(seed=1)
    directory = reference_dir(tmp_path / "checkpoints")

    pin = write_pin(gathered_state_dict(policy, rank=0), directory, step=3, precision="bf16")
    ref = load_pin(read_pin(directory), frozen_copy(_tiny(seed=2)), dtype=torch.bfloat16)

    assert pin == read_pin(directory) and pin.step == 3 and pin.precision == "bf16"
    assert pin.sha256 == file_sha256(directory / "weights.pt")
    assert json.loads((directory / "meta.json").read_text())["sha256"] == pin.sha256
    assert not ref.training and not any(p.requires_grad for p in ref.parameters())
    for (name, want), got in zip(policy.state_dict().items(), ref.state_dict().values(), strict=True):
        assert got.dtype == torch.bfloat16, name
        assert torch.equal(got, want.to(torch.bfloat16)), name
    assert [p.name for p in tmp_path.joinpath("checkpoints").iterdir()] == ["reference"]  # no temp left


def test_no_pin_reads_as_none_and_a_rank_other_than_0_gets_no_state(tmp_path):
    assert read_pin(reference_dir(tmp_path)) is None
    assert gathered_state_dict(_tiny(), rank=1) is None


def test_a_second_pin_keeps_the_first(tmp_path):
    directory = reference_dir(tmp_path)
    first = write_pin(_tiny(seed=1).state_dict(), directory, step=2, precision="fp32")

    second = write_pin(_tiny(seed=2).state_dict(), directory, step=5, precision="fp32")

    assert second == first
    assert [p.name for p in tmp_path.iterdir()] == ["reference"]


def test_weights_that_do_not_match_their_sha256_are_refused(tmp_path):
    directory = reference_dir(tmp_path)
    write_pin(_tiny(seed=1).state_dict(), directory, step=0, precision="fp32")
    torch.save(_tiny(seed=2).state_dict(), directory / "weights.pt")

    with pytest.raises(ValueError, match=r"does not match .* in meta\.json"):
        load_pin(read_pin(directory), frozen_copy(_tiny()), dtype=torch.float32)


def test_an_unreadable_meta_names_the_file(tmp_path):
    directory = reference_dir(tmp_path)
    directory.mkdir()
    (directory / "meta.json").write_text('{"step": 1}')
    with pytest.raises(ValueError, match=r"meta\.json: unreadable"):
        read_pin(directory)
