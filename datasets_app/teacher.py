"""A teacher model behind any OpenAI-compatible chat endpoint, and the strict parser of what it writes.

`Teacher` wraps the official `openai` client (a vLLM or llama.cpp server, a hosted API: base URL, model
name, API key). It asks for a JSON object (`response_format={"type": "json_object"}`) and, when the server
refuses that parameter, asks again in plain text and keeps doing so. Every failure becomes one
`TeacherError` whose `kind` a job acts on (wait `retry_after_s` after "rate_limited", stop on "auth", ...).

The API key is held only in `TeacherConfig.api_key`: it is left out of the config's repr, never logged,
and scrubbed from error messages (a server may echo a request back).

`parse_candidates` turns a reply into problems or rejections, never half of one: the reply must be JSON
(one fenced ```json block is tolerated, and one leading <think> block), `{"problems": [...]}`, each item
in Triad's own JSONL schema (function or program), checked field by field with the importer's validators
(datasets_app/parsing.py).
No code is run here; the gate runs it in the sandbox.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import openai

from datasets_app.parsing import MAX_SHORT, ParsedProblem, _reasoning, _strings, _triad
from datasets_app.secrets import mask

log = logging.getLogger(__name__)

# The kinds Teacher raises; a caller may raise its own beside them (a job's "cancelled").
ERROR_KINDS = ("rate_limited", "timeout", "auth", "server", "bad_request", "connection")
KINDS = ("function", "program")
COMPARES = ("exact", "whitespace", "float")
MAX_RAW = 20_000  # characters of a rejected reply kept for people to read
MAX_CASES = 200
MAX_CASE_CHARS = 100_000
_FENCE = re.compile(r"\A```(?:json|JSON)?[ \t]*\n(.*?)\n?```\Z", re.DOTALL)
# A reasoning model served without a reasoning parser (llama.cpp, vLLM by default) writes its thinking
# first, in the content itself: one leading <think>…</think> block is set aside, nothing else is.
_THINK = re.compile(r"\A\s*<think>.*?</think>", re.DOTALL)
_RESPONSE_FORMAT_HINTS = ("response_format", "json_object", "response format", "json mode")


@dataclass(frozen=True)
class TeacherConfig:
    base_url: str  # with its /v1, as the openai client expects: http://127.0.0.1:8000/v1
    model: str
    api_key: str = field(repr=False)
    timeout_s: float = 60.0
    max_retries: int = 0

    def __str__(self) -> str:
        return f"{self.model} at {self.base_url} (key {mask(self.api_key) or 'none'})"


@dataclass(frozen=True)
class TeacherReply:
    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str


class TeacherError(Exception):
    """A request that brought no reply. `kind` is one of ERROR_KINDS (from Teacher); `retry_after_s` is
    the server's Retry-After on a 429 (None when it gave none)."""

    def __init__(self, kind: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class Teacher:
    def __init__(self, config: TeacherConfig) -> None:
        self.config = config
        # "no key" still needs a value: the client refuses to start without one; servers without auth
        # ignore it.
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "none",
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )
        self.json_mode = True  # turned off for good once the server refuses response_format

    def __repr__(self) -> str:
        return f"Teacher({self.config!r})"

    def close(self) -> None:
        self._client.close()

    def ask(
        self,
        messages: list[dict[str, Any]],
        *,
        temperature: float = 0.7,
        max_tokens: int = 4096,
        seed: int | None = None,
        json_mode: bool = True,
    ) -> TeacherReply:
        """One chat completion; `json_mode=False` asks for plain text (a reworded sentence, say)."""
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if seed is not None:
            kwargs["seed"] = seed
        started = time.monotonic()
        if json_mode and self.json_mode:
            try:
                completion = self._create(**kwargs, response_format={"type": "json_object"})
            except TeacherError as exc:
                if exc.kind != "bad_request" or not _refuses_response_format(exc.message):
                    raise
                log.info("teacher %s refuses response_format; asking in plain text", self.config.model)
                self.json_mode = False
                completion = self._create(**kwargs)
        else:
            completion = self._create(**kwargs)
        if not completion.choices:
            raise TeacherError("server", "the reply held no choices")
        choice = completion.choices[0]
        usage = completion.usage
        reply = TeacherReply(
            text=choice.message.content or "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            finish_reason=str(choice.finish_reason or ""),
        )
        log.info(
            "teacher %s answered in %.2f s: %d tokens in, %d out, finish %s",
            self.config.model,
            time.monotonic() - started,
            reply.tokens_in,
            reply.tokens_out,
            reply.finish_reason,
        )
        return reply

    def _create(self, **kwargs: Any) -> Any:
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError as exc:
            raise TeacherError("timeout", f"no reply within {self.config.timeout_s:g} s") from exc
        except openai.APIConnectionError as exc:
            raise TeacherError(
                "connection", self._scrub(f"cannot reach {self.config.base_url}: {exc}")
            ) from exc
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from exc
        except openai.APIError as exc:  # a 200 whose body is not a completion
            raise TeacherError("server", self._scrub(f"unreadable reply: {exc}")) from exc

    def _status_error(self, exc: openai.APIStatusError) -> TeacherError:
        status = exc.status_code
        message = self._scrub(f"HTTP {status}: {_error_message(exc)}")
        if status == 429:
            return TeacherError(
                "rate_limited", message, _retry_after(exc.response.headers.get("retry-after"))
            )
        if status in (401, 403):
            return TeacherError("auth", message)
        if status >= 500:
            return TeacherError("server", message)
        return TeacherError("bad_request", message)

    def _scrub(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, mask(key)) if key else text


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:500]
        if isinstance(body.get("message"), str):
            return str(body["message"])[:500]
    return str(exc.message)[:500]


def _refuses_response_format(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _RESPONSE_FORMAT_HINTS)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def estimate_usd(
    tokens_in: int, tokens_out: int, *, usd_per_mtok_in: float, usd_per_mtok_out: float
) -> float:
    return (tokens_in * usd_per_mtok_in + tokens_out * usd_per_mtok_out) / 1_000_000


# --- the strict parser ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    reason: str  # "malformed" (not JSON) | "schema" (JSON, not the schema)
    detail: str  # a sentence for people, naming the item and field
    raw: str  # the reply (malformed) or the item (schema), capped at MAX_RAW characters


ParsedOrRejected = ParsedProblem | Rejected


def parse_candidates(text: str, *, kind: str, job_prefix: str, request_index: int) -> list[ParsedOrRejected]:
    """Each problem of a teacher's reply, parsed, or rejected with the reason and where; task ids are
    made unique as f"{job_prefix}/{request_index}/{i}" (what the teacher named them is not kept)."""
    if kind not in KINDS:
        raise ValueError(f"unknown problem kind {kind!r}; expected one of {', '.join(KINDS)}")
    body = _THINK.sub("", text, count=1).strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        return [
            Rejected("malformed", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", _cap(text))
        ]
    except RecursionError:
        return [Rejected("malformed", "not JSON: nested too deeply", _cap(text))]
    items = document.get("problems") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        return [
            Rejected("schema", 'expected an object {"problems": [...]} with at least one problem', _cap(text))
        ]
    out: list[ParsedOrRejected] = []
    for i, item in enumerate(items):
        task_id = f"{job_prefix}/{request_index}/{i}"
        out.append(_candidate(item, kind=kind, task_id=task_id, where=f"problems[{i}]", source=job_prefix))
    return out


def _cap(text: str) -> str:
    return text if len(text) <= MAX_RAW else text[:MAX_RAW] + f"… ({len(text) - MAX_RAW} more characters)"


def _candidate(item: Any, *, kind: str, task_id: str, where: str, source: str) -> ParsedOrRejected:
    raw = _cap(json.dumps(item, ensure_ascii=False))
    if not isinstance(item, dict):
        return Rejected("schema", f"{where}: expected an object", raw)
    errors: list[str] = []

    def report(_line: int, name: str, message: str) -> None:
        errors.append(f"field '{name}': {message}" if name else message)

    declared = item.get("kind", kind)
    if declared != kind:
        report(0, "kind", f"must be {kind!r} (got {declared!r})")
    # The teacher's own task_id and source are replaced, so they are not checked; the rest is.
    record = {**item, "task_id": task_id, "source": source[:MAX_SHORT]}
    problem = _function(record, report) if kind == "function" else _program(record, report)
    reasoning = _reasoning(0, record, report)
    if errors or problem is None or reasoning is None:
        return Rejected("schema", f"{where}: " + "; ".join(errors or ["not a problem"]), raw)
    return replace(problem, reasoning=reasoning) if reasoning else problem


def _function(record: dict[str, Any], report: Any) -> ParsedProblem | None:
    for name in ("cases", "compare"):
        if record.get(name) not in (None, "", []):
            report(0, name, "belongs to program problems; a function problem has tests")
    return _triad(0, record, report)


def _program(record: dict[str, Any], report: Any) -> ParsedProblem | None:
    ok = _strings(0, record, ("prompt", "solution"), report)
    for name in ("entry_point", "tests"):
        if record.get(name) not in (None, ""):
            report(0, name, "belongs to function problems; a program problem has cases")
            ok = False
    cases = _cases(record, report)
    compare = record.get("compare") or ""
    if compare not in ("", *COMPARES):
        report(0, "compare", f"must be one of {', '.join(COMPARES)}")
        ok = False
    # task_id, difficulty, tags and source are checked as for functions, on a stand-in function.
    stand_in = {k: v for k, v in record.items() if k not in ("cases", "compare")}
    stand_in |= {"kind": "function", "entry_point": "main", "tests": "-", "solution": "-", "prompt": "-"}
    common = _triad(0, stand_in, report)
    if not ok or cases is None or common is None:
        return None
    return replace(
        common,
        prompt=record["prompt"],
        entry_point="",
        solution=record["solution"],
        tests="",
        kind="program",
        cases=cases,
        compare=compare,
    )


def _cases(record: dict[str, Any], report: Any) -> tuple[tuple[str, str], ...] | None:
    value = record.get("cases")
    if not isinstance(value, list) or not value:
        report(0, "cases", "missing" if "cases" not in record else "must be a non-empty list")
        return None
    if len(value) > MAX_CASES:
        report(0, "cases", f"at most {MAX_CASES} cases (got {len(value)})")
        return None
    out = []
    for i, case in enumerate(value):
        if not isinstance(case, dict) or not all(isinstance(case.get(k), str) for k in ("input", "output")):
            report(0, "cases", f'case {i}: must be an object {{"input": string, "output": string}}')
            return None
        if len(case["input"]) + len(case["output"]) > MAX_CASE_CHARS:
            report(0, "cases", f"case {i}: longer than {MAX_CASE_CHARS} characters")
            return None
        out.append((case["input"], case["output"]))
    return tuple(out)
