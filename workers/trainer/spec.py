"""The run spec: typed, frozen dataclasses parsed from the JSON the control plane builds."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.repo.task import RepoTask, RepoTaskError
from workers.spec import REPO_KIND, REWARD_WEIGHTS, TrainConfig, config_from_dict


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name}: must be an object")
    return value


def _int(d: dict[str, Any], prefix: str, key: str, default: int, *, minimum: int) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{prefix}.{key}: must be an integer >= {minimum} (got {value!r})")
    return value


def _float(
    d: dict[str, Any], prefix: str, key: str, default: float, *, minimum: float, strict: bool = False
) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{prefix}.{key}: must be a number (got {value!r})")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{prefix}.{key}: must be a number {op} {minimum} (got {value!r})")
    return float(value)


def _bool(d: dict[str, Any], prefix: str, key: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{prefix}.{key}: must be true or false (got {value!r})")
    return value


def _str(d: dict[str, Any], prefix: str, key: str, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{prefix}.{key}: must be a string (got {value!r})")
    return value


DTYPES = ("bf16", "fp16", "fp32")


@dataclass(frozen=True)
class ModelSpec:
    kind: str = "tiny"
    path: str | None = None
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 512
    tokenizer: str | None = None  # a Hugging Face model's tokenizer, when not at path
    chat: bool = False  # an instruct model: prompts go through its chat template
    dtype: str = "fp32"  # what its weights are stored and served in
    stop: tuple[str, ...] = ()  # this model's own stop strings

    @property
    def tokenizer_path(self) -> str | None:
        return self.tokenizer or self.path


# The trainer's settings are defined once, with the control plane's, in workers/spec.py.
TrainSpec = TrainConfig


def reward_weights(train: TrainSpec) -> dict[str, float]:
    """{component: weight} for every reward component, zero weights included."""
    return {key.removeprefix("reward_"): float(getattr(train, key)) for key in REWARD_WEIGHTS}


@dataclass(frozen=True)
class ResourcesSpec:
    num_nodes: int = 1
    procs_per_node: int = 1
    gpu: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    timeout_s: float = 2.0
    memory_mb: int = 512


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    tests: str
    solution: str = ""
    reasoning: str = ""  # a teacher's step-by-step trace, when the dataset has one
    stop: tuple[str, ...] = ()  # the dataset's stop strings
    verifier: str = ""  # the problem's own reward(candidate, problem), over reward_custom_source
    # A program problem ("program"): the model writes a whole program reading stdin; cases are its
    # (input, expected output) pairs, compared as compare says (workers/sandbox/compare.py; "" is
    # "whitespace"); entry_point and tests are "" (docs/trainer.md, "Program problems").
    kind: str = "function"
    cases: tuple[tuple[str, str], ...] = ()
    compare: str = ""
    # A repository task (kind "repo"): the model works in the repository over many turns
    # (workers/trainer/episodes.py); prompt is its statement and solution its reference patch.
    repo: RepoTask | None = None

    @property
    def is_program(self) -> bool:
        return self.kind == "program"

    @property
    def is_repo(self) -> bool:
        return self.kind == REPO_KIND


@dataclass(frozen=True)
class RunSpec:
    run_id: int
    name: str
    control_url: str
    model: ModelSpec
    train: TrainSpec
    resources: ResourcesSpec
    sandbox: SandboxSpec
    problems: tuple[Problem, ...]


def _stop_list(d: dict[str, Any], prefix: str) -> tuple[str, ...]:
    value = d.get("stop")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ValueError(f"{prefix}.stop: must be a list of non-empty strings (got {value!r})")
    return tuple(value)


def _optional_str(d: dict[str, Any], prefix: str, key: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{prefix}.{key}: must be a string or null (got {value!r})")
    return value or None


def _parse_model(d: dict[str, Any]) -> ModelSpec:
    kind = _str(d, "model", "kind", "tiny")
    if kind not in ("tiny", "hf"):
        raise ValueError(f"model.kind: must be 'tiny' or 'hf' (got {kind!r})")
    path = _optional_str(d, "model", "path")
    if kind == "hf" and not path:
        raise ValueError("model.path: required when model.kind is 'hf'")
    chat = _bool(d, "model", "chat", False)
    if chat and kind != "hf":
        raise ValueError("model.chat: only a Hugging Face model (model.kind 'hf') has a chat template")
    dtype = _str(d, "model", "dtype", "fp32")
    if dtype not in DTYPES:
        raise ValueError(f"model.dtype: must be one of {', '.join(DTYPES)} (got {dtype!r})")
    d_model = _int(d, "model", "d_model", 64, minimum=8)
    n_heads = _int(d, "model", "n_heads", 4, minimum=1)
    if d_model % n_heads:
        raise ValueError(f"model.n_heads: must divide model.d_model ({d_model} % {n_heads} != 0)")
    return ModelSpec(
        kind=kind,
        path=path,
        d_model=d_model,
        n_layers=_int(d, "model", "n_layers", 2, minimum=1),
        n_heads=n_heads,
        max_len=_int(d, "model", "max_len", 512, minimum=16),
        tokenizer=_optional_str(d, "model", "tokenizer"),
        chat=chat,
        dtype=dtype,
        stop=_stop_list(d, "model"),
    )


def _parse_train(d: dict[str, Any]) -> TrainSpec:
    return config_from_dict(d, config_type=TrainConfig, prefix="train.")


def _parse_snapshots(raw: Any) -> dict[str, bytes]:
    """The spec's top-level "snapshots": {sha256: base64 .tar.gz}, each checked against its key."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("snapshots: must be an object of sha256 -> base64 .tar.gz")
    out: dict[str, bytes] = {}
    for sha, text in raw.items():
        if not isinstance(text, str):
            raise ValueError(f"snapshots.{sha}: must be a base64 string")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"snapshots.{sha}: not valid base64 ({exc})") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"snapshots.{sha}: the data's sha256 is {hashlib.sha256(data).hexdigest()}")
        out[sha] = data
    return out


# RepoTask's field names (SWE-bench's) as the spec's problem item spells them.
_REPO_FIELDS = {
    "instance_id": "task_id",
    "problem_statement": "prompt",
    "patch": "solution",
    "snapshot": "repo.snapshot_sha256",
}


def _repo_task(item: dict[str, Any], prefix: str, snapshots: dict[str, bytes]) -> RepoTask:
    """A repo problem's RepoTask, from the item's "repo" object and the spec's snapshots; errors name
    problems[i].repo.<field> (or the item's own field: task_id, prompt, solution)."""
    repo = item.get("repo")
    if not isinstance(repo, dict):
        raise ValueError(f"{prefix}.repo: a repo problem needs its repo object")

    def ids(name: str) -> tuple[str, ...]:
        value = repo.get(name, [])
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise ValueError(f"{prefix}.repo.{name}: must be a list of test ids")
        return tuple(value)

    def text(name: str, default: str = "") -> str:
        value = repo.get(name, default)
        if not isinstance(value, str):
            raise ValueError(f"{prefix}.repo.{name}: must be a string (got {type(value).__name__})")
        return value

    sha = text("snapshot_sha256")
    if sha not in snapshots:
        raise ValueError(f"{prefix}.repo.snapshot_sha256: no snapshot {sha[:16]!r} in the spec's snapshots")
    try:
        return RepoTask(
            task_id=_str(item, prefix, "task_id"),
            statement=_str(item, prefix, "prompt"),
            snapshot=snapshots[sha],
            fail_to_pass=ids("FAIL_TO_PASS"),
            pass_to_pass=ids("PASS_TO_PASS"),
            patch=item.get("solution") or "",
            test_patch=text("test_patch"),
            runner=text("runner", "unittest") or "unittest",
            repo=text("repo"),
        )
    except RepoTaskError as exc:
        field = _REPO_FIELDS.get(exc.field, f"repo.{exc.field}")
        raise ValueError(f"{prefix}.{field}: {str(exc).removeprefix(exc.field + ': ')}") from None


def _parse_problems(raw: Any, snapshots: dict[str, bytes] | None = None) -> tuple[Problem, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("problems: must be a non-empty list")
    out: list[Problem] = []
    for i, item in enumerate(raw):
        prefix = f"problems[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{prefix}: must be an object")
        solution = item.get("solution") or ""
        if not isinstance(solution, str):
            raise ValueError(f"{prefix}.solution: must be a string (got {solution!r})")
        reasoning = item.get("reasoning") or ""
        if not isinstance(reasoning, str):
            raise ValueError(f"{prefix}.reasoning: must be a string (got {type(reasoning).__name__})")
        verifier = item.get("verifier") or ""
        if not isinstance(verifier, str):
            raise ValueError(f"{prefix}.verifier: must be a string (got {type(verifier).__name__})")
        kind, cases, compare = _program_fields(item, prefix)
        program = kind in ("program", REPO_KIND)  # no entry point, no tests source
        repo = _repo_task(item, prefix, snapshots or {}) if kind == REPO_KIND else None
        out.append(
            Problem(
                task_id=_str(item, prefix, "task_id"),
                prompt=_str(item, prefix, "prompt"),
                entry_point=_str(item, prefix, "entry_point", "" if program else None),
                tests=_str(item, prefix, "tests", "" if program else None),
                solution=solution,
                reasoning=reasoning,
                stop=_stop_list(item, prefix),
                verifier=verifier,
                kind=kind,
                cases=cases,
                compare=compare,
                repo=repo,
            )
        )
    return tuple(out)


PROBLEM_KINDS = ("function", "program", REPO_KIND)
COMPARES = ("exact", "whitespace", "float")  # workers/sandbox/compare.py


def _program_fields(item: dict[str, Any], prefix: str) -> tuple[str, tuple[tuple[str, str], ...], str]:
    """(kind, cases, compare) of a spec problem; a program needs at least one {input, output} case."""
    kind = _str(item, prefix, "kind", "function")
    if kind not in PROBLEM_KINDS:
        raise ValueError(f"{prefix}.kind: must be one of {', '.join(PROBLEM_KINDS)} (got {kind!r})")
    compare = _str(item, prefix, "compare", "") if item.get("compare") is not None else ""
    if compare not in (*COMPARES, ""):
        raise ValueError(f"{prefix}.compare: must be one of {', '.join(COMPARES)} (got {compare!r})")
    raw = item.get("cases")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ValueError(f"{prefix}.cases: must be a list of {{input, output}} objects")
    cases = []
    for j, case in enumerate(raw):
        if not (
            isinstance(case, dict)
            and isinstance(case.get("input"), str)
            and isinstance(case.get("output"), str)
        ):
            raise ValueError(f"{prefix}.cases[{j}]: must be an object with string input and output")
        cases.append((case["input"], case["output"]))
    if kind == "program" and not cases:
        raise ValueError(f"{prefix}.cases: a program problem needs at least one case")
    if kind != "program" and cases:
        raise ValueError(f"{prefix}.cases: only a program problem has cases")
    return kind, tuple(cases), compare


def parse_spec(raw: Any) -> RunSpec:
    """Parse the spec JSON object; raises ValueError naming the offending field."""
    if not isinstance(raw, dict):
        raise ValueError("spec: must be a JSON object")
    run_id = raw.get("run_id")
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise ValueError(f"run_id: must be an integer (got {run_id!r})")
    problems = _parse_problems(raw.get("problems"), _parse_snapshots(raw.get("snapshots")))
    train = _parse_train(_section(raw, "train"))
    if train.eval_problems >= len(problems):
        raise ValueError(
            f"train.eval_problems: must leave at least one training problem "
            f"({train.eval_problems} of {len(problems)} held out)"
        )
    res = _section(raw, "resources")
    sb = _section(raw, "sandbox")
    return RunSpec(
        run_id=run_id,
        name=_str(raw, "spec", "name", f"run-{run_id}"),
        control_url=_str(raw, "spec", "control_url", ""),
        model=_parse_model(_section(raw, "model")),
        train=train,
        resources=ResourcesSpec(
            num_nodes=_int(res, "resources", "num_nodes", 1, minimum=1),
            procs_per_node=_int(res, "resources", "procs_per_node", 1, minimum=1),
            gpu=_bool(res, "resources", "gpu", False),
        ),
        sandbox=SandboxSpec(
            timeout_s=_float(sb, "sandbox", "timeout_s", 2.0, minimum=0.0, strict=True),
            memory_mb=_int(sb, "sandbox", "memory_mb", 512, minimum=16),
        ),
        problems=problems,
    )


def load_spec(path: Path) -> RunSpec:
    with open(path, encoding="utf-8") as fh:
        return parse_spec(json.load(fh))
