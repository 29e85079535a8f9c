"""Exporting a run's checkpoint as a Hugging Face model (workers/export.py), from real DeepSpeed
checkpoints of the tiny Hugging Face model written by the trainer's own engine
(tests/workers/ds_checkpoint.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from workers.export import (
    TINY_REFUSAL,
    ExportRefused,
    checkpoint_root,
    export_checkpoint,
    main,
    newest_checkpoint,
)

ROOT = Path(__file__).resolve().parents[2]


def _checkpoint(
    model_dir: Path,
    workdir: Path,
    zero_stage: int,
    step: int = 3,
    lora_rank: int = 0,
    precision: str = "fp32",
) -> Path:
    workdir.mkdir(parents=True)
    args = [str(model_dir), str(workdir), str(zero_stage), str(step), str(lora_rank), precision]
    done = subprocess.run(
        [sys.executable, "-m", "tests.workers.ds_checkpoint", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module", params=[0, 2, 3], ids=lambda z: f"zero{z}")
def run_dir(request, tiny_hf_dir, tmp_path_factory) -> Path:
    """A run's work dir holding a real checkpoint saved after one optimizer step, at each ZeRO stage."""
    return _checkpoint(tiny_hf_dir, tmp_path_factory.mktemp("run") / "7", request.param)


@pytest.mark.e2e  # a real deepspeed checkpoint, no database
def test_the_export_holds_the_checkpoints_weights_in_16_bit_and_the_runs_tokenizer(run_dir, tiny_hf_dir):
    info = export_checkpoint(run_dir)

    assert (info.step, Path(info.path)) == (3, run_dir / "export-step3")
    exported = AutoModelForCausalLM.from_pretrained(info.path, local_files_only=True)
    assert exported.dtype == torch.bfloat16
    assert (Path(info.path) / "model.safetensors").is_file()
    trained = torch.load(run_dir / "trained.pt")
    original = AutoModelForCausalLM.from_pretrained(str(tiny_hf_dir), local_files_only=True).state_dict()
    weights = exported.state_dict()
    assert set(trained) <= set(weights)
    for name, value in trained.items():
        assert torch.equal(weights[name], value.to(torch.bfloat16)), name
    # The step changed the weights, so equal weights are the checkpoint's, not the base model's.
    assert any(not torch.equal(original[name], value) for name, value in trained.items())
    assert info.params == sum(p.numel() for p in exported.parameters())
    tokenizer = AutoTokenizer.from_pretrained(info.path, local_files_only=True)
    base_tokenizer = AutoTokenizer.from_pretrained(str(tiny_hf_dir), local_files_only=True)
    assert tokenizer.encode("def add(a, b):\n    return a + b") == base_tokenizer.encode(
        "def add(a, b):\n    return a + b"
    )
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".export")] == []  # no temp dir left


@pytest.mark.e2e  # a real deepspeed checkpoint, no database
@pytest.mark.parametrize("zero_stage", [0, 2])
def test_a_run_trained_in_bf16_exports_the_weights_it_trained_to(tiny_hf_dir, tmp_path, zero_stage):
    # bf16 training: ZeRO-2 keeps fp32 master weights (consolidated, then rounded), ZeRO-0 the bf16 module
    workdir = _checkpoint(tiny_hf_dir, tmp_path / "run", zero_stage, precision="bf16")

    info = export_checkpoint(workdir)

    weights = AutoModelForCausalLM.from_pretrained(info.path, local_files_only=True).state_dict()
    trained = torch.load(workdir / "trained.pt")  # the bf16 module's weights, as fp32
    assert all(torch.equal(weights[k].float(), v) for k, v in trained.items())
    assert weights["model.embed_tokens.weight"].dtype == torch.bfloat16


@pytest.mark.e2e  # a real deepspeed checkpoint, no database
def test_a_redelivered_export_answers_with_the_directory_already_written(run_dir):
    first = export_checkpoint(run_dir)
    written = {p: p.stat().st_mtime_ns for p in Path(first.path).iterdir()}

    again = export_checkpoint(run_dir)

    assert again == first
    assert {p: p.stat().st_mtime_ns for p in Path(again.path).iterdir()} == written


@pytest.mark.e2e  # a real deepspeed checkpoint, no database
def test_an_fp32_model_is_exported_in_fp32(tiny_hf_dir, tmp_path):
    workdir = _checkpoint(tiny_hf_dir, tmp_path / "run", 0, step=2)
    spec = json.loads((workdir / "spec.json").read_text())
    spec["model"]["dtype"] = "fp32"
    (workdir / "spec.json").write_text(json.dumps(spec))

    info = export_checkpoint(workdir, tmp_path / "out")

    assert Path(info.path) == tmp_path / "out" / "export-step2"
    exported = AutoModelForCausalLM.from_pretrained(info.path, local_files_only=True)
    trained = torch.load(workdir / "trained.pt")
    assert exported.dtype == torch.float32
    assert all(torch.equal(exported.state_dict()[k], v) for k, v in trained.items())


def _attempt(workdir: Path, attempt: int, tag: str) -> None:
    d = workdir / "checkpoints" / f"attempt-{attempt}"
    (d / tag).mkdir(parents=True)
    (d / "latest").write_text(tag + "\n")


def test_the_newest_checkpoint_is_the_latest_of_the_last_attempt_that_saved_one(tmp_path):
    _attempt(tmp_path, 1, "step4")
    _attempt(tmp_path, 2, "step9")
    (tmp_path / "checkpoints" / "attempt-3").mkdir()  # started, saved nothing
    (tmp_path / "checkpoints" / "reference" / "step0").mkdir(parents=True)  # not one of the run's

    ckpt = newest_checkpoint(tmp_path / "checkpoints")

    assert (ckpt.attempt_dir.name, ckpt.tag, ckpt.step) == ("attempt-2", "step9", 9)


def test_a_run_without_a_checkpoint_is_refused_saying_so(tmp_path, tiny_hf_dir):
    spec = {"model": {"kind": "hf", "path": str(tiny_hf_dir), "dtype": "bf16"}, "train": {}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "checkpoints" / "attempt-1").mkdir(parents=True)

    with pytest.raises(ExportRefused, match="the run saved no checkpoint"):
        export_checkpoint(tmp_path)
    assert not list(tmp_path.glob("export-*"))


def test_a_run_of_the_built_in_tiny_model_is_refused(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"model": {"kind": "tiny"}, "train": {}}))
    _attempt(tmp_path, 1, "step2")

    with pytest.raises(ExportRefused) as refused:
        export_checkpoint(tmp_path)
    assert str(refused.value) == TINY_REFUSAL


@pytest.mark.e2e  # a real deepspeed checkpoint, no database
@pytest.mark.parametrize("zero_stage", [0, 2])
def test_a_lora_runs_adapters_are_merged_into_a_plain_model_of_the_base_architecture(
    tiny_hf_dir, tmp_path, zero_stage
):
    workdir = _checkpoint(tiny_hf_dir, tmp_path / "run", zero_stage, step=4, lora_rank=4)

    info = export_checkpoint(workdir)

    exported = AutoModelForCausalLM.from_pretrained(info.path, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(str(tiny_hf_dir), local_files_only=True).state_dict()
    merged = torch.load(workdir / "trained.pt")  # the trained adapters merged, in the trainer's process
    weights = exported.state_dict()
    assert set(weights) == set(base)  # no adapter left: a model of the base's architecture
    assert all(torch.equal(weights[k], v.to(torch.bfloat16)) for k, v in merged.items())
    changed = [k for k, v in merged.items() if not torch.equal(base[k], v)]
    assert changed and all(k.endswith("proj.weight") for k in changed)  # the adapted linear layers
    assert info.params == sum(v.numel() for v in base.values())


@pytest.mark.e2e  # a real deepspeed checkpoint, no database
def test_a_model_no_longer_on_the_node_is_refused_naming_it(run_dir, tmp_path):
    workdir = tmp_path / "moved"
    shutil.copytree(run_dir / "checkpoints", workdir / "checkpoints")
    spec = json.loads((run_dir / "spec.json").read_text())
    spec["model"]["path"] = str(tmp_path / "gone")
    (workdir / "spec.json").write_text(json.dumps(spec))

    with pytest.raises(ExportRefused, match=f"the run's model is not on this node: {tmp_path / 'gone'}"):
        export_checkpoint(workdir)


def test_the_command_line_prints_the_export_or_the_refusal(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "refused: no " in capsys.readouterr().err


def test_the_checkpoint_root_is_the_runs_shared_one_else_the_work_dirs(tmp_path):
    shared, workdir = tmp_path / "shared", tmp_path / "runs" / "7"

    assert checkpoint_root(7, shared=shared, workdir=workdir) == workdir / "checkpoints"  # a run from before
    (shared / "run-7").mkdir(parents=True)
    assert checkpoint_root(7, shared=shared, workdir=workdir) == shared / "run-7"


def test_an_attempt_whose_latest_names_a_deleted_checkpoint_is_passed_over(tmp_path):
    _attempt(tmp_path, 1, "step4")
    _attempt(tmp_path, 2, "step9")
    (tmp_path / "checkpoints" / "attempt-2" / "step9").rmdir()  # retention deleted it

    ckpt = newest_checkpoint(tmp_path / "checkpoints")

    assert (ckpt.attempt_dir.name, ckpt.tag) == ("attempt-1", "step4")


def test_a_node_that_never_ran_the_run_reads_its_spec_from_the_shared_root(tmp_path):
    root = tmp_path / "shared" / "run-7"
    (root / "attempt-1" / "step2").mkdir(parents=True)
    (root / "attempt-1" / "latest").write_text("step2")
    (root / "spec.json").write_text(json.dumps({"model": {"kind": "tiny"}, "train": {}}))

    with pytest.raises(ExportRefused) as refused:
        export_checkpoint(tmp_path / "runs" / "7", root=root)  # no work dir on this node
    assert str(refused.value) == TINY_REFUSAL  # the spec was found: the refusal is about the model
