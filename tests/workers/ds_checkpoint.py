"""Write a real DeepSpeed checkpoint of a Hugging Face model the way the trainer does, in a process of its
own (a one-rank gloo group, so the test process never joins a process group):

    python -m tests.workers.ds_checkpoint MODEL_DIR WORKDIR ZERO_STAGE STEP [LORA_RANK [PRECISION]]

It builds the trainer's engine (workers.trainer.engine.build_engine) around the model, takes one
optimizer step so that the weights are no longer the model's own, saves the checkpoint as the trainer
does (WORKDIR/checkpoints/attempt-1/step<STEP>, with its `latest` file), writes WORKDIR/spec.json with
the model section of a run of that model, and WORKDIR/trained.pt: the weights the engine ended with
(fp32, gathered; with LORA_RANK, the policy as the trainer builds it with adapters, and trained.pt holds
the adapters merged into the base weights), which an export must reproduce.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(
    model_dir: Path, workdir: Path, zero_stage: int, step: int, lora_rank: int = 0, precision: str = "fp32"
) -> None:
    os.environ.update(
        {
            "RANK": "0",
            "LOCAL_RANK": "0",
            "WORLD_SIZE": "1",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(_free_port()),
        }
    )
    import deepspeed
    import torch
    from transformers import AutoModelForCausalLM

    from workers.spec import TrainConfig, config_from_dict
    from workers.trainer.engine import build_engine, prepare_policy

    torch.manual_seed(0)
    deepspeed.init_distributed(dist_backend="gloo")
    train_section = {
        "zero_stage": zero_stage,
        "precision": precision,
        "lr": 0.05,
        "prompts_per_step": 1,
        "group_size": 2,
    }
    if lora_rank:
        train_section.update({"lora_rank": lora_rank, "lora_alpha": 2.0 * lora_rank})
    train = config_from_dict(train_section, config_type=TrainConfig)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32  # as the trainer loads it
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True, dtype=dtype)
    model = prepare_policy(model, train, hf=True)
    engine = build_engine(model, train, world=1, device=torch.device("cpu"))
    ids = torch.randint(0, model.config.vocab_size, (2, 16))
    loss = engine(input_ids=ids, labels=ids).loss
    engine.backward(loss)
    engine.step()
    ckpt_root = workdir / "checkpoints" / "attempt-1"
    engine.save_checkpoint(str(ckpt_root), tag=f"step{step}", client_state={"next_step": step})
    if lora_rank:  # what the adapters amount to: merged into a copy of the base weights
        merged = copy.deepcopy(engine.module).merge_and_unload()
        trained = {name: p.detach().float().clone() for name, p in merged.named_parameters()}
    else:
        params = dict(engine.module.named_parameters())
        with deepspeed.zero.GatheredParameters(list(params.values()), enabled=zero_stage == 3):
            trained = {name: p.detach().float().clone() for name, p in params.items()}
    torch.save(trained, workdir / "trained.pt")
    spec = {
        "run_id": 7,
        "model": {"kind": "hf", "path": str(model_dir), "tokenizer": None, "chat": False, "dtype": "bf16"},
        "train": train_section,
        "problems": [{"task_id": "T/0", "prompt": "def f():", "entry_point": "f", "tests": "assert True"}],
    }
    (workdir / "spec.json").write_text(json.dumps(spec))


if __name__ == "__main__":
    precision = sys.argv[6] if len(sys.argv) > 6 else "fp32"
    main(Path(sys.argv[1]), Path(sys.argv[2]), *(int(a) for a in sys.argv[3:6]), precision=precision)
