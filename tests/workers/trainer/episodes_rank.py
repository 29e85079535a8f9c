"""One rank of test_episodes_run.py: a real Trainer, world size 1, run on a spec file, in a process of its
own (the test process never joins a process group; DeepSpeed keeps its group for the process's life).

    python -m tests.workers.trainer.episodes_rank SPEC_PATH PORT
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    spec_path, port = Path(sys.argv[1]), sys.argv[2]
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_SIZE": "1"}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "DS_ACCELERATOR": "cpu"}
    )
    os.environ.pop("TRIAD_CHECKPOINT_DIR", None)
    import torch.distributed as dist

    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec

    raw = json.loads(spec_path.read_text())
    try:
        Trainer(parse_spec(raw), spec_path, "tok").run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
