"""What a node of the pool does with an `evals.execute` message: write the spec, run
`python -m workers.trainer.evaluate` in a subprocess (torch stays out of the worker, and a crash or a
hung evaluation is that process's, not the worker's) and turn what it wrote into the answer for
`evals.record`."""

import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # where `python -m workers...` is found
log = logging.getLogger(__name__)
STDERR_TAIL = 2000  # what of the evaluation's stderr a failure keeps: its traceback's end


def builtin_problems(name: str, limit: int) -> list[dict[str, Any]]:
    """A built-in benchmark's first `limit` problems, from this node's installed package."""
    from workers.trainer.eval_sets import load_eval_set

    return [{**asdict(p), "stop": list(p.stop)} for p in load_eval_set(name, limit)]


def evaluate_on_node(
    message: dict[str, Any],
    *,
    node: str,
    runs_dir: Path,
    checkpoint_dir: Path,
    timeout_s: float,
    beat: Callable[[], None] = lambda: None,
    beat_s: float = 15.0,
) -> dict[str, Any]:
    """The answer: {"state": "succeeded", "result", "node"} or {"state": "failed", "error", "node"}.
    While the evaluation runs, `beat()` every `beat_s`: the word that keeps the job from the lost-job
    reaper (a worker that dies stops saying it)."""
    try:
        spec = dict(message["spec"])
        builtin = message.get("builtin")
        if builtin:
            spec["problems"] = builtin_problems(str(builtin["name"]), int(builtin["problems"]))
        with tempfile.TemporaryDirectory(prefix="triad-eval-") as tmp:
            spec_path, out = Path(tmp) / "spec.json", Path(tmp) / "result.json"
            spec_path.write_text(json.dumps(spec))
            argv = [sys.executable, "-m", "workers.trainer.evaluate", "--spec", str(spec_path)]
            argv += ["--out", str(out), "--on", "problems"]
            run_id = message.get("run_id")
            if run_id is not None:
                argv += ["--checkpoint", str(_checkpoints_of(int(run_id), runs_dir, checkpoint_dir))]
            returncode, stderr = _run(argv, timeout_s=timeout_s, beat=beat, beat_s=beat_s)
            if returncode != 0:
                tail = stderr.strip()[-STDERR_TAIL:] or "(no output)"
                return _failed(f"the evaluation exited with status {returncode}: {tail}", node)
            return {"state": "succeeded", "result": json.loads(out.read_text()), "node": node}
    except subprocess.TimeoutExpired:
        return _failed(f"the evaluation ran past {timeout_s:.0f} s and was stopped", node)
    except Exception as exc:  # anything else would leave the job running for ever
        return _failed(f"the node could not evaluate it: {type(exc).__name__}: {exc}", node)


def _run(argv: list[str], *, timeout_s: float, beat: Callable[[], None], beat_s: float) -> tuple[int, str]:
    """Run the evaluation to its end, calling `beat` every `beat_s` meanwhile: its exit status and
    stderr. Past `timeout_s` it is killed and TimeoutExpired raised, as subprocess.run would."""
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as proc:
        while True:
            left = deadline - time.monotonic()
            try:
                _, stderr = proc.communicate(timeout=max(0.0, min(beat_s, left)))
                return proc.returncode, stderr
            except subprocess.TimeoutExpired:  # communicate() again loses no output
                if time.monotonic() >= deadline:
                    proc.kill()
                    proc.communicate()
                    raise
                try:
                    beat()
                except Exception as exc:  # a broker hiccup must not stop the evaluation; the next may pass
                    log.warning("could not say the evaluation is still running: %s", exc)


def _checkpoints_of(run_id: int, runs_dir: Path, checkpoint_dir: Path) -> Path:
    """The run's checkpoint root (the evaluation loads its newest), where the pool's nodes mount it."""
    from workers.export import checkpoint_root

    return checkpoint_root(run_id, shared=checkpoint_dir, workdir=runs_dir / str(run_id))


def _failed(error: str, node: str) -> dict[str, Any]:
    return {"state": "failed", "error": error, "node": node}
