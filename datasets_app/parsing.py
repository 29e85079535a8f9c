"""Streaming parse of a HumanEval-format JSONL file into problems, collecting every error.

A bad file is refused whole: the parser reads to the end and reports each problem by line and field, so a
person fixes the file once instead of once per error.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
MAX_REPORTED_ERRORS = 50


@dataclass(frozen=True)
class ParsedProblem:
    task_id: str
    prompt: str
    entry_point: str
    solution: str
    tests: str


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ParseResult:
    problems: list[ParsedProblem]
    errors: list[LineError]
    content_hash: str


def parse_jsonl(lines: Iterable[bytes]) -> ParseResult:
    problems: list[ParsedProblem] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if len(errors) >= MAX_REPORTED_ERRORS:
            errors.append(LineError(number, "", "too many errors; stopped reading"))
            break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(LineError(number, "", f"not valid UTF-8 (byte {exc.start})"))
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(LineError(number, "", f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(record, dict):
            errors.append(LineError(number, "", "expected a JSON object"))
            continue
        line_errors = [
            LineError(number, name, "missing" if name not in record else "must be a non-empty string")
            for name in REQUIRED_FIELDS
            if not isinstance(record.get(name), str) or not record[name].strip()
        ]
        if line_errors:
            errors.extend(line_errors)
            continue
        task_id = record["task_id"]
        if task_id in seen:
            errors.append(LineError(number, "task_id", f"duplicate of line {seen[task_id]}: {task_id!r}"))
            continue
        seen[task_id] = number
        if not record["entry_point"].isidentifier():
            errors.append(LineError(number, "entry_point", "must be a Python identifier"))
            continue
        problems.append(
            ParsedProblem(
                task_id=task_id,
                prompt=record["prompt"],
                entry_point=record["entry_point"],
                solution=record["canonical_solution"],
                tests=record["test"],
            )
        )
    if not problems and not errors:
        errors.append(LineError(0, "", "the file holds no problems"))
    return ParseResult(problems=problems, errors=errors, content_hash=content_hash(problems))


def content_hash(problems: Iterable[ParsedProblem]) -> str:
    """Hash of the canonical content: key order and whitespace of the file do not change it."""
    digest = hashlib.sha256()
    for problem in problems:
        canonical = [problem.task_id, problem.prompt, problem.entry_point, problem.solution, problem.tests]
        digest.update(json.dumps(canonical, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()
