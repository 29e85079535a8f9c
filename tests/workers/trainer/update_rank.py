"""One rank of test_update_equivalence.py: a real Trainer takes one step's update on fixed rows and writes
the gradient each optimizer step applied (all-reduced, before clipping) to a file.

    python -m tests.workers.trainer.update_rank '<json: spec, rank, world, port, out>'
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any


def fixed_groups(n_groups: int, group_size: int, seed: int) -> list[list[dict[str, Any]]]:
    """Groups of completions of uneven lengths with varied advantages, the same in every process."""
    rnd = random.Random(seed)
    groups = []
    for _ in range(n_groups):
        prompt = [rnd.randrange(3, 200) for _ in range(rnd.randint(3, 8))]
        groups.append(
            [
                {
                    "prompt": prompt,
                    "completion": [rnd.randrange(3, 200) for _ in range(rnd.randint(1, 12))],
                    "advantage": rnd.uniform(-1.5, 1.5),
                    "noise": rnd.uniform(-0.3, 0.3),
                }
                for _ in range(group_size)
            ]
        )
    return groups


def main() -> None:
    job = json.loads(sys.argv[1])
    os.environ.update(
        {"RANK": str(job["rank"]), "LOCAL_RANK": str(job["rank"]), "WORLD_SIZE": str(job["world"])}
        | {"LOCAL_SIZE": str(job["world"]), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(job["port"])}
    )
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import torch

    from workers.trainer.batches import Row
    from workers.trainer.logprobs import completion_logprobs
    from workers.trainer.loop import Trainer
    from workers.trainer.metrics import LocalStats
    from workers.trainer.problems import rank_share
    from workers.trainer.spec import parse_spec

    spec_path = Path(job["spec"])
    spec = parse_spec(json.loads(spec_path.read_text()))
    trainer = Trainer(spec, spec_path, "tok")
    train = spec.train
    groups = fixed_groups(train.prompts_per_step, train.group_size, seed=5)
    # π_old a little off the policy, so that ratios differ from 1 and some clip.
    rows: list[list[Row]] = []
    for g in groups:
        logp, _, _ = completion_logprobs(
            trainer.logits_fn,
            [r["prompt"] for r in g],
            [r["completion"] for r in g],
            pad_id=trainer.tokenizer.pad_id,
            temperature=train.temperature,
            device=trainer.device,
        )
        rows.append(
            [
                Row(
                    r["prompt"],
                    r["completion"],
                    [float(x) + r["noise"] for x in logp[i, : len(r["completion"])]],
                    r["advantage"],
                )
                for i, r in enumerate(g)
            ]
        )
    mine = [rows[i] for i in rank_share(range(len(rows)), trainer.rank, trainer.world)]
    applied: list[torch.Tensor] = []
    engine = trainer.engine
    real_step = engine.step

    def step(*args: Any, **kwargs: Any) -> Any:
        if engine.is_gradient_accumulation_boundary():
            applied.append(torch.cat([p.grad.detach().flatten().clone() for p in engine.module.parameters()]))
        return real_step(*args, **kwargs)

    engine.step = step
    trainer._update(train.sft_warmup_steps, mine, LocalStats())
    if trainer.rank == 0:
        torch.save({"grads": applied, "n_micro": trainer.n_micro}, job["out"])
    if trainer.client is not None:
        trainer.client.close()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
