"""Repository tasks (issue #23): a model working inside a repository over many turns — viewing,
searching, editing, running the tests — and submitting a patch graded SWE-bench style.

Standard library only: the trainer imports this on GPU nodes. The modules:

- `task`: the task (snapshot, statement, FAIL_TO_PASS / PASS_TO_PASS, reference and test patches) and
  its JSONL line format;
- `workspace`: a safe extract of the snapshot per episode, removed whatever happens;
- `testrun`: running named tests inside the sandbox (`workers.sandbox.workspace_exec`);
- `patching`: a pure-Python unified-diff applier and tree differ;
- `tools` and `env`: the agent's tools and the episode;
- `grading`, `verify`, `reference`: the reward, the dataset gate and the reference trajectory.

docs/repository-tasks.md describes them for people.
"""
