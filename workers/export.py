"""Export a run's newest checkpoint as a Hugging Face model directory, on a node of the run's pool
(docs/models.md, "Export and lineage").

Plain Python, no Django: the node reads the run's checkpoint root — `<TRIAD_CHECKPOINT_DIR>/run-<id>` on
storage every node of the pool mounts, or, for a run from before it, `<workdir>/checkpoints` —
(attempt-<n>/<tag>/, workers/trainer/checkpoints.py) and its spec (the work dir's spec.json, else the copy
the trainer left in the shared root: this node may never have run it), rebuilds the model the run trained
from its spec (local files only), loads the checkpoint's weights consolidated in fp32 — every ZeRO stage,
without a process group —, merges a LoRA run's adapters into the base weights, casts them to the model's
16-bit dtype and writes safetensors and the tokenizer to export-step<N>/ next to the checkpoints (the
shared root, or the work dir), atomically. The control plane then registers that directory as a new model.

By hand on a node: python -m workers.export WORKDIR [--checkpoints ROOT] [--dtype bf16|fp16|fp32]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.model_info import ModelRefused, resolve_source
from workers.spec import TrainConfig, config_from_dict

TINY_REFUSAL = "the built-in tiny model is not a Hugging Face model; export needs a run of a registered model"
TAG_RE = re.compile(r"^step(\d+)$")
DTYPES = ("bf16", "fp16", "fp32")


class ExportRefused(ValueError):
    """The run cannot be exported; the message says why (shown on the model's row)."""


@dataclass(frozen=True)
class ExportInfo:
    step: int  # the checkpoint's step: the run's steps done when it was saved
    path: str  # the exported directory, on this node (the pool's shared run storage)
    params: int

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "path": self.path, "params": self.params}


@dataclass(frozen=True)
class Checkpoint:
    attempt_dir: Path  # checkpoints/attempt-<n> (or checkpoints/ itself: the layout before attempts)
    tag: str
    step: int

    @property
    def dir(self) -> Path:
        return self.attempt_dir / self.tag


def checkpoint_root(run_id: int, *, shared: Path, workdir: Path) -> Path:
    """Where run `run_id`'s checkpoints are: `<shared>/run-<id>` (TRIAD_CHECKPOINT_DIR, what the
    launcher gives the trainer) when it exists, else the work dir's, where runs from before it saved."""
    root = shared / f"run-{run_id}"
    return root if root.is_dir() else workdir / "checkpoints"


def _names_a_checkpoint(attempt_dir: Path) -> bool:
    """A `latest` naming a directory that is there (retention deletes what an older one named)."""
    try:
        tag = (attempt_dir / "latest").read_text().strip()
    except OSError:
        return False
    return bool(tag) and (attempt_dir / tag).is_dir()


def newest_checkpoint(root: Path) -> Checkpoint:
    """The checkpoint a resume would start from: the `latest` of the highest attempt under the
    checkpoint root that saved one (a later attempt resumed from the earlier ones, so its checkpoint is
    the newer), else the layout before attempts. Other directories under the root (a pinned reference,
    exports) are not the run's checkpoints."""
    attempts = sorted(
        (int(p.name.removeprefix("attempt-")), p)
        for p in root.glob("attempt-*")
        if p.name.removeprefix("attempt-").isdigit() and _names_a_checkpoint(p)
    )
    candidates = [p for _, p in attempts] or ([root] if (root / "latest").is_file() else [])
    if not candidates:
        raise ExportRefused(f"the run saved no checkpoint (no {root}/attempt-<n>/latest on this node)")
    attempt_dir = candidates[-1]
    tag = (attempt_dir / "latest").read_text().strip()
    if not (attempt_dir / tag).is_dir():
        raise ExportRefused(f"{attempt_dir}/latest names {tag!r}, which is not a directory there")
    match = TAG_RE.match(tag)
    if match is None:
        raise ExportRefused(f"checkpoint tag {tag!r} in {attempt_dir} is not step<N>")
    return Checkpoint(attempt_dir=attempt_dir, tag=tag, step=int(match.group(1)))


def read_spec(workdir: Path, root: Path | None = None) -> dict[str, Any]:
    """The run's spec: the work dir's, else the copy in the checkpoint root (a node that never ran it)."""
    path = workdir / "spec.json"
    if not path.is_file() and root is not None and (root / "spec.json").is_file():
        path = root / "spec.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportRefused(f"no {path} on this node: the run never started here") from None
    except (OSError, ValueError) as exc:
        raise ExportRefused(f"{path} is unreadable: {exc}") from None
    if not isinstance(raw, dict):
        raise ExportRefused(f"{path} is not a JSON object")
    return raw


def checkpoint_state_dict(ckpt: Checkpoint) -> dict[str, Any]:
    """The checkpoint's module weights in fp32, whole (workers.trainer.checkpoints reads them)."""
    from workers.trainer.checkpoints import consolidated_weights

    try:
        return consolidated_weights(ckpt.attempt_dir, ckpt.tag)
    except ValueError as exc:
        raise ExportRefused(str(exc)) from None


def export_checkpoint(
    workdir: Path, out_dir: Path | None = None, *, dtype: str | None = None, root: Path | None = None
) -> ExportInfo:
    """Write the run's newest checkpoint, under `root` (default `workdir`/checkpoints), as a Hugging
    Face model to `out_dir`/export-step<N> (default: next to the checkpoints — the shared root itself,
    or `workdir`), in `dtype` (default: the spec's model.dtype, the 16-bit one the model is served in;
    fp32 for an fp32 model). An export already there is the answer again (a redelivered task). Raises
    ExportRefused saying why it cannot."""
    legacy = workdir / "checkpoints"
    root = root or legacy
    spec = read_spec(workdir, root)
    model_section = spec.get("model") or {}
    if model_section.get("kind", "tiny") != "hf":
        raise ExportRefused(TINY_REFUSAL)
    dtype = dtype or str(model_section.get("dtype") or "bf16")
    if dtype not in DTYPES:
        raise ExportRefused(f"dtype: one of {', '.join(DTYPES)}, not {dtype!r}")
    ckpt = newest_checkpoint(root)
    target = (out_dir or (workdir if root == legacy else root)) / f"export-step{ckpt.step}"
    if (target / "config.json").is_file():
        return ExportInfo(step=ckpt.step, path=str(target), params=_saved_params(target))
    try:
        model_path = resolve_source(str(model_section.get("path") or ""))
        tok_source = str(model_section.get("tokenizer") or "")
        tok_path = resolve_source(tok_source) if tok_source else model_path
    except ModelRefused as exc:
        raise ExportRefused(f"the run's model is not on this node: {exc}") from None
    return _write(spec, ckpt, model_path, tok_path, target, dtype)


def _write(
    spec: dict[str, Any], ckpt: Checkpoint, model_path: Path, tok_path: Path, target: Path, dtype: str
) -> ExportInfo:
    import torch
    from transformers import AutoTokenizer

    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    model = _rebuild(spec, ckpt, model_path).to(torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_path), local_files_only=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: a reader (or a redelivered task) never sees a
    # half-written directory, and a failed export leaves nothing behind but the temp dir it removes.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            # Another export of the same checkpoint (a second model, a redelivery) renamed first: the
            # same weights are there already.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    params = sum(p.numel() for p in model.parameters())
    return ExportInfo(step=ckpt.step, path=str(target), params=params)


def _rebuild(spec: dict[str, Any], ckpt: Checkpoint, model_path: Path) -> Any:
    """The model the run trained, holding the checkpoint's weights in fp32. A LoRA run's policy is the
    base model with adapters (workers.trainer.engine.with_lora, from the spec's train section): rebuilt
    the same way, loaded, and the adapters merged into the base weights, so that the export is a plain
    model of the base's architecture."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    train = _train_config(spec)
    if train.lora_rank:
        from workers.trainer.engine import with_lora

        base = AutoModelForCausalLM.from_pretrained(
            str(model_path), local_files_only=True, dtype=torch.float32
        )
        policy = with_lora(base, train, hf=True)
        _load(policy, checkpoint_state_dict(ckpt), ckpt, model_path)
        return policy.merge_and_unload()  # type: ignore[operator]
    config = AutoConfig.from_pretrained(str(model_path), local_files_only=True)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    _load(model, checkpoint_state_dict(ckpt), ckpt, model_path)
    return model


def _train_config(spec: dict[str, Any]) -> TrainConfig:
    try:
        return config_from_dict(spec.get("train") or {}, config_type=TrainConfig, prefix="train.")
    except ValueError as exc:
        raise ExportRefused(f"spec.json: {exc}") from None


def _load(model: Any, state: dict[str, Any], ckpt: Checkpoint, model_path: Path) -> None:
    """Every weight of the model from the checkpoint, refusing one that does not fit it."""
    expected = set(model.state_dict())
    missing = expected - set(state)
    # A tied output layer is one tensor under two names; the checkpoint may hold it under either.
    tied = {k for k in missing if _is_tied(model, k)}
    unexpected = set(state) - expected
    if missing - tied or unexpected:
        raise ExportRefused(
            f"the checkpoint {ckpt.dir} does not fit the model at {model_path}: missing "
            f"{sorted(missing - tied)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    model.load_state_dict(state, strict=False)
    model.tie_weights()


def _is_tied(model: Any, key: str) -> bool:
    tied = getattr(model.config, "tie_word_embeddings", False)
    return bool(tied) and key.endswith("lm_head.weight")


def _saved_params(target: Path) -> int:
    from workers.model_info import inspect_model

    try:
        return inspect_model(str(target)).params
    except ModelRefused:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="the run's work dir (TRIAD_RUNS_DIR/<run id>)")
    parser.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="the run's checkpoint root (default WORKDIR/checkpoints)",
    )
    parser.add_argument("--dtype", choices=DTYPES, default=None, help="default: the spec's model.dtype")
    args = parser.parse_args(argv)
    try:
        info = export_checkpoint(args.workdir, dtype=args.dtype, root=args.checkpoints)
    except ExportRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info.as_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
