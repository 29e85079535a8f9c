"""Ingest client: the one door through which a run's telemetry reaches the control plane.

Standard library only. Every event gets a per-(run, source) sequence number that persists across
restarts, is appended to an on-disk spool before it is sent, and is removed from the spool only once
the control plane has acknowledged it. Every batch names the run's attempt it belongs to; the control
plane treats (run, attempt, source, seq) as an idempotency key, so re-sending after a crash or a lost
answer is harmless, and a resumed attempt on a fresh node, whose sequence starts at 0 again, is not
taken for a repeat of the attempt before it.

Spool layout (``spool_dir``):
    next_seq       the next sequence number to hand out (written atomically at every flush)
    acked          high-water mark: every event with seq <= this is acknowledged or rejected
    attempt        the attempt whose events the spool holds (when the client was given one)
    spool.jsonl    append-only JSONL of events, compacted once everything in it is acked
    rejected.jsonl events the control plane refused with a 400 (kept for inspection)
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Desired states on which the trainer checkpoints and stops and the launcher stops its process group
# (`lost`: the control plane gave up on this attempt and fences it; only a new attempt, Resume, goes on).
from workers.spec import STOP_STATES as STOP_STATES

MAX_TEXT_CHARS = 64 * 1024
MAX_BACKOFF_S = 30.0
GANG_WAIT_S = 120.0  # how long a node waits for its gang when the control plane does not say


class IngestError(Exception):
    """Base class for ingest failures."""


class IngestAuthError(IngestError):
    """401 or 404: the token is wrong or the run does not exist. Not retried."""


class IngestRefused(IngestError):
    """409: the run is not this caller's to start (it ended, or another launcher holds its attempt).

    `retry`: not now, but later (another run of the pool is gathering its nodes, or this node's ranks
    differ from the gang's): the caller puts the run's message back on its queue."""

    def __init__(self, message: str, *, desired_state: str, retry: bool = False) -> None:
        super().__init__(message)
        self.desired_state = desired_state
        self.retry = retry


class IngestUnavailable(IngestError):
    """The control plane could not be reached (connection error, timeout, 5xx) or asked us to slow
    down (429, with how long to wait)."""

    def __init__(self, message: str, *, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_text(text: str) -> str:
    """The text with NUL and lone surrogates as U+FFFD: PostgreSQL text cannot store NUL, and no UTF-8
    encoder takes a lone surrogate (a file name decoded with surrogateescape, a pair cut in half), so
    the control plane refuses either with a 400 and the event would be lost."""
    text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if _SURROGATE.search(text) is None:
        return text
    # Through UTF-16: a pair held as two code points becomes its one character, a lone half U+FFFD.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _clean(value: Any) -> Any:
    """Every string in an event, object keys included, cleaned (see _clean_text)."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


MAX_EVENT_CASES = 21  # a program's first 20 cases and its first failing one (rewards.event_cases)
MAX_CASE_CHARS = 2100  # each text of a case: the sandbox's 2,000 characters and its "… (N more)" note


def _event_case(case: Mapping[str, Any]) -> dict[str, Any]:
    """One case of a program's generation event, as the ingest schema takes it."""
    return {
        "index": int(case.get("index", 0)),
        "outcome": str(case.get("outcome", "")),
        "duration_ms": int(case.get("duration_ms", 0)),
        **{
            k: _truncate(str(case.get(k, "")), MAX_CASE_CHARS)
            for k in ("input", "expected", "actual", "stderr")
        },
    }


def _truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Cap text size, after cleaning it (see _clean_text)."""
    text = _clean_text(text)
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n…[truncated {len(text) - limit} chars]"


def _retry_after(headers: Any) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except (TypeError, ValueError):
        return 1.0


def _request(url: str, token: str, *, body: bytes | None, timeout_s: float) -> tuple[int, dict[str, Any]]:
    """Return (status, parsed JSON answer). Raises IngestUnavailable for transient failures."""
    if not url.startswith(("http://", "https://")):
        raise IngestError(f"control URL must be http(s): {url!r}")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, headers=headers, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            status = int(resp.status)
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        raw = exc.read() or b""
        if status >= 500:
            raise IngestUnavailable(f"{url}: HTTP {status}") from exc
        if status == 429:
            # Throttled: nothing of the batch was written; wait as told, then send it again.
            raise IngestUnavailable(f"{url}: HTTP 429", retry_after_s=_retry_after(exc.headers)) from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise IngestUnavailable(f"{url}: {exc}") from exc
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = {"error": raw[:200].decode("utf-8", "replace")}
    if not isinstance(parsed, dict):
        parsed = {"value": parsed}
    return status, parsed


def fetch_spec(control_url: str, run_id: int, token: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """GET the run spec. Retries transient failures a few times, then raises IngestUnavailable."""
    url = f"{control_url.rstrip('/')}/api/v1/runs/{run_id}/spec"
    last: IngestUnavailable | None = None
    for attempt in range(4):
        try:
            status, answer = _request(url, token, body=None, timeout_s=timeout_s)
        except IngestUnavailable as exc:
            last = exc
            time.sleep(min(MAX_BACKOFF_S, 0.5 * 2**attempt))
            continue
        if status in (401, 403, 404):
            raise IngestAuthError(f"GET {url}: HTTP {status}: {answer.get('error', '')}")
        if status == 409:
            raise _refused(f"GET {url}", answer)
        if status != 200:
            raise IngestError(f"GET {url}: HTTP {status}: {answer}")
        return answer
    assert last is not None
    raise last


def _state(answer: dict[str, Any]) -> str:
    state = answer.get("desired_state")
    return state if isinstance(state, str) else ""


@dataclass(frozen=True)
class GangMember:
    """One node of a run's gang, as the claim's answer names it."""

    node_rank: int
    node: str
    address: str
    port: int | None
    ranks: int
    devices: tuple[int, ...] = ()  # the GPU ids it starts its ranks on; () on CPU, or all of the node's


@dataclass(frozen=True)
class Gang:
    """The nodes a run's attempt runs on (docs: the gang protocol of issue #17). `formed`: all `size`
    have claimed, the run is starting; until then `members` holds those that have."""

    size: int
    formed: bool
    node_rank: int
    claimed: int
    members: tuple[GangMember, ...]
    master_addr: str
    master_port: int | None


@dataclass(frozen=True)
class Claim:
    """The claim's answer: the run's desired state, its gang, and how long a node waits for the gang."""

    desired_state: str
    gang: Gang
    wait_s: float


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _gang(answer: dict[str, Any]) -> Gang:
    """The answer's gang; a control plane that sends none (before gangs) started a run of one node."""
    raw = answer.get("gang")
    if not isinstance(raw, dict):
        return Gang(size=1, formed=True, node_rank=0, claimed=1, members=(), master_addr="", master_port=None)
    members = []
    for m in raw.get("members") or []:
        if not isinstance(m, dict):
            continue
        devices = m.get("devices")
        if not isinstance(devices, list):
            devices = []
        members.append(
            GangMember(
                node_rank=int(m.get("node_rank", 0)),
                node=str(m.get("node", "")),
                address=str(m.get("address", "") or ""),
                port=_int_or_none(m.get("port")),
                ranks=int(m.get("ranks", 1) or 1),
                devices=tuple(int(d) for d in devices),
            )
        )
    return Gang(
        size=int(raw.get("size", 1)),
        formed=bool(raw.get("formed")),
        node_rank=int(raw.get("node_rank", 0)),
        claimed=int(raw.get("claimed", len(members))),
        members=tuple(sorted(members, key=lambda m: m.node_rank)),
        master_addr=str(raw.get("master_addr", "") or ""),
        master_port=_int_or_none(raw.get("master_port")),
    )


def _refused(what: str, answer: dict[str, Any]) -> IngestRefused:
    return IngestRefused(
        f"{what}: {answer.get('error', '')}", desired_state=_state(answer), retry=answer.get("retry") is True
    )


def claim_run(
    control_url: str,
    run_id: int,
    token: str,
    attempt: int,
    key: str,
    timeout_s: float = 10.0,
    *,
    provenance: Mapping[str, Any] | None = None,
    node: str = "",
    address: str = "",
    port: int | None = None,
    ranks: int | None = None,
    devices: Sequence[int] = (),
) -> Claim:
    """Claim the run's attempt for this launcher on this node (POST .../claim); returns the answer.

    `node` (the worker's node name), `address` and `port` (where the gang's other nodes reach this one),
    `ranks` (the trainer processes it starts) and `devices` (the GPU ids it starts them on) make this
    node a member of the run's gang; the same body again is a poll while the gang forms.
    `provenance` (workers/provenance.py) goes with the claim, for the run page. Raises IngestRefused when
    another claim holds the attempt or the run moved on (a redelivered start task, a cancel): the caller
    then starts nothing; with `.retry` when it is only "not now". Transient failures are retried with
    the same key, which the control plane accepts again, and in the end raise IngestUnavailable."""
    url = f"{control_url.rstrip('/')}/api/v1/runs/{run_id}/claim"
    fields: dict[str, Any] = {"attempt": attempt, "claim": key}
    if node:
        fields["node"] = node
    if address:
        fields["address"] = address
    if port is not None:
        fields["port"] = port
    if ranks is not None:
        fields["ranks"] = ranks
    fields["devices"] = list(devices)
    if provenance is not None:
        fields["provenance"] = _clean(dict(provenance))
    body = json.dumps(fields).encode("utf-8")
    last: IngestUnavailable | None = None
    for retry in range(4):
        try:
            status, answer = _request(url, token, body=body, timeout_s=timeout_s)
        except IngestUnavailable as exc:
            last = exc
            time.sleep(max(exc.retry_after_s, min(MAX_BACKOFF_S, 0.5 * 2**retry)))
            continue
        if status in (401, 403, 404):
            raise IngestAuthError(f"POST {url}: HTTP {status}: {answer.get('error', '')}")
        if status == 409:
            raise _refused(f"POST {url}", answer)
        if status == 400 and answer.get("field") == "provenance" and "provenance" in fields:
            # Provenance is bookkeeping: a control plane that refuses ours still gets the claim.
            print(
                f"claim: provenance refused ({answer.get('error', '')}); claiming without it", file=sys.stderr
            )
            del fields["provenance"]
            body = json.dumps(fields).encode("utf-8")
            continue
        if status != 200:
            raise IngestError(f"POST {url}: HTTP {status}: {answer}")
        wait_s = answer.get("wait_s")
        if not isinstance(wait_s, int | float) or isinstance(wait_s, bool):
            wait_s = GANG_WAIT_S
        return Claim(desired_state=_state(answer), gang=_gang(answer), wait_s=float(wait_s))
    assert last is not None
    raise last


def release_run(
    control_url: str, run_id: int, token: str, attempt: int, key: str, timeout_s: float = 10.0
) -> bool:
    """Give up this node's claim on a gang that did not form in time (POST .../release); returns whether
    the control plane dropped it. Raises IngestRefused when the gang formed meanwhile (the caller then
    runs its share after all), IngestUnavailable when the control plane cannot be reached (the claim
    then times out there by itself)."""
    url = f"{control_url.rstrip('/')}/api/v1/runs/{run_id}/release"
    body = json.dumps({"attempt": attempt, "claim": key}).encode("utf-8")
    status, answer = _request(url, token, body=body, timeout_s=timeout_s)
    if status in (401, 403, 404):
        raise IngestAuthError(f"POST {url}: HTTP {status}: {answer.get('error', '')}")
    if status == 409:
        raise _refused(f"POST {url}", answer)
    if status != 200:
        raise IngestError(f"POST {url}: HTTP {status}: {answer}")
    return answer.get("released") is True


class IngestClient:
    def __init__(
        self,
        control_url: str,
        run_id: int,
        token: str,
        *,
        spool_dir: Path,
        source: str = "trainer",
        timeout_s: float = 10.0,
        max_batch: int = 500,
        attempt: int | None = None,
    ) -> None:
        """`attempt`: the run's attempt this process belongs to, sent with every batch. None (an older
        caller) sends none, and the control plane counts the events as the run's current attempt's."""
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if attempt is not None and attempt < 1:
            raise ValueError(f"attempt: expected an integer >= 1, got {attempt}")
        self.attempt = attempt
        self.url = f"{control_url.rstrip('/')}/api/v1/runs/{run_id}/events"
        self.token = token
        self.source = source
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.desired_state: str | None = None
        self._lock = threading.RLock()
        self._failures = 0
        self._next_attempt = 0.0
        self._spool_path = self.spool_dir / "spool.jsonl"
        self._acked = self._read_int(self.spool_dir / "acked", -1)
        self._pending: list[dict[str, Any]] = self._load_pending()
        self._spool_attempt_check()
        max_spooled = max((int(e["seq"]) for e in self._pending), default=-1)
        self._next_seq = max(self._read_int(self.spool_dir / "next_seq", 0), self._acked + 1, max_spooled + 1)
        self._write_int(self.spool_dir / "next_seq", self._next_seq)
        self._spool_fh = open(self._spool_path, "a", encoding="utf-8")  # noqa: SIM115 - long-lived

    # ----------------------------------------------------------------- persistence helpers
    @staticmethod
    def _read_int(path: Path, default: int) -> int:
        try:
            return int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return default

    @staticmethod
    def _write_int(path: Path, value: int) -> None:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            fh.write(str(value))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _load_pending(self) -> list[dict[str, Any]]:
        events: dict[int, dict[str, Any]] = {}
        if not self._spool_path.exists():
            return []
        with open(self._spool_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                    seq = int(event["seq"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a torn last line after a crash
                if seq > self._acked:
                    events[seq] = event
        return [events[s] for s in sorted(events)]

    def _spool_attempt_check(self) -> None:
        """Events left in the spool by an earlier attempt (a resume on the same node, same work dir) are
        that attempt's: sent under this one they would land as this attempt's, and under theirs they
        are refused (fenced). They go to rejected.jsonl; the sequence goes on from where it was."""
        if self.attempt is None:
            return
        stored = self._read_int(self.spool_dir / "attempt", self.attempt)
        if stored != self.attempt and self._pending:
            for event in self._pending:
                self._reject(event, f"left by attempt {stored}; this is attempt {self.attempt}")
            self._acked = max(int(e["seq"]) for e in self._pending)
            self._write_int(self.spool_dir / "acked", self._acked)
            self._pending = []
            self._spool_path.write_text("")
        self._write_int(self.spool_dir / "attempt", self.attempt)

    def _compact(self) -> None:
        """Rewrite the spool with only the unacknowledged events."""
        self._spool_fh.close()
        tmp = self._spool_path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for event in self._pending:
                fh.write(json.dumps(event) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._spool_path)
        self._spool_fh = open(self._spool_path, "a", encoding="utf-8")  # noqa: SIM115

    # ----------------------------------------------------------------- event constructors
    def _emit(self, event: dict[str, Any]) -> None:
        event = _clean(event)
        with self._lock:
            event = {"seq": self._next_seq, **event}
            self._next_seq += 1
            self._spool_fh.write(json.dumps(event) + "\n")
            self._pending.append(event)

    def metric(self, step: int, values: Mapping[str, float]) -> None:
        clean = {str(k): float(v) for k, v in values.items()}
        self._emit({"type": "metric", "step": int(step), "time": time.time(), "values": clean})

    def generation(
        self,
        step: int,
        *,
        problem_id: str,
        completion: str,
        reward: float,
        passed: bool,
        error_class: str,
        tests_passed: int,
        tests_total: int,
        stdout: str = "",
        stderr: str = "",
        duration_ms: int = 0,
        cases: Sequence[Mapping[str, Any]] = (),
        repo: Mapping[str, Any] | None = None,
    ) -> None:
        # A program problem's cases (workers/trainer/rewards.event_cases); a function's event is as it was.
        extra: dict[str, Any] = {"cases": [_event_case(c) for c in cases[:MAX_EVENT_CASES]]} if cases else {}
        if repo is not None:  # a repository episode's (EpisodeResult.event_fields: capped, JSON-safe)
            extra["repo"] = dict(repo)
        self._emit(
            {
                "type": "generation",
                "step": int(step),
                "problem_id": problem_id,
                "completion": _truncate(completion),
                "reward": float(reward),
                "passed": bool(passed),
                "error_class": error_class,
                "tests_passed": int(tests_passed),
                "tests_total": int(tests_total),
                "stdout": _truncate(stdout),
                "stderr": _truncate(stderr),
                "duration_ms": int(duration_ms),
                **extra,
            }
        )

    def log(self, message: str, level: str = "info") -> None:
        self._emit({"type": "log", "time": time.time(), "level": level, "message": _truncate(message)})

    def status(self, status: str, message: str = "") -> None:
        self._emit({"type": "status", "status": status, "message": _truncate(message)})

    def heartbeat(self) -> None:
        self._emit({"type": "heartbeat", "time": time.time()})

    def checkpoints(self, report: Mapping[str, Any]) -> None:
        """The checkpoints retention kept (workers/trainer/retention.py Retained.as_event)."""
        self._emit({"type": "checkpoints", **report})

    @property
    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    # ----------------------------------------------------------------- sending
    def _reject(self, event: dict[str, Any], reason: str) -> None:
        print(f"ingest: rejected event seq={event.get('seq')}: {reason}", file=sys.stderr)
        with open(self.spool_dir / "rejected.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"reason": reason, "event": event}) + "\n")

    def _mark_done(self, upto_seq: int) -> None:
        self._pending = [e for e in self._pending if int(e["seq"]) > upto_seq]
        if upto_seq > self._acked:
            self._acked = upto_seq
            self._write_int(self.spool_dir / "acked", self._acked)

    def _post(self, batch: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        fields: dict[str, Any] = {"source": self.source, "events": batch}
        if self.attempt is not None:
            fields["attempt"] = self.attempt
        body = json.dumps(fields).encode("utf-8")
        return _request(self.url, self.token, body=body, timeout_s=self.timeout_s)

    def _send_batch(self, batch: list[dict[str, Any]]) -> None:
        """Send one batch until it is fully acknowledged or rejected. Raises IngestUnavailable."""
        while batch:
            status, answer = self._post(batch)
            if status == 200:
                state = answer.get("desired_state")
                if isinstance(state, str):
                    self.desired_state = state
                self._mark_done(int(batch[-1]["seq"]))
                return
            if status in (401, 403, 404):
                raise IngestAuthError(f"POST {self.url}: HTTP {status}: {answer.get('error', '')}")
            if status == 409 and _state(answer):
                # The run is lost, or this attempt is not its current one (fenced): nothing will ever be
                # accepted. Keep the command it carries (a stop) and drop the batch below.
                self.desired_state = _state(answer)
            if status == 413:
                limit = answer.get("max_events")
                if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(batch):
                    # More events than the server takes in one request: send at most that many, from
                    # now on too. Nothing is dropped (heartbeats and statuses are in these batches).
                    self.max_batch = min(self.max_batch, limit)
                    while len(batch) > limit:
                        self._send_batch(batch[:limit])
                        batch = batch[limit:]
                    continue
                if len(batch) > 1:
                    # Over the byte limit (or a proxy's, which says no more): halve until it fits.
                    half = len(batch) // 2
                    self._send_batch(batch[:half])
                    batch = batch[half:]
                    continue
                # One event that alone is over the limit: nothing can make it fit; drop it by its seq.
                self._reject(batch[0], f"HTTP 413: alone over the server's limit: {answer.get('error')!r}")
                self._mark_done(int(batch[0]["seq"]))
                return
            index = answer.get("event_index")
            if status == 400 and isinstance(index, int) and 0 <= index < len(batch):
                bad = batch[index]
                self._reject(bad, f"HTTP 400 field={answer.get('field')!r} error={answer.get('error')!r}")
                # Everything before the bad event is resent (idempotent), the bad one is dropped.
                rest = batch[:index] + batch[index + 1 :]
                self._pending = [e for e in self._pending if e is not bad and e["seq"] != bad["seq"]]
                if not rest:
                    self._mark_done(int(bad["seq"]))
                    return
                batch = rest
                continue
            # Any other 4xx (or a 400 without a usable index, or one event too large): drop the
            # batch rather than retrying it forever.
            for event in batch:
                self._reject(event, f"HTTP {status}: {answer}")
            self._mark_done(int(batch[-1]["seq"]))
            return

    def flush(self, *, ignore_backoff: bool = False) -> str | None:
        """Send everything pending. Returns desired_state, or None if the control plane is unreachable."""
        with self._lock:
            self._spool_fh.flush()
            os.fsync(self._spool_fh.fileno())
            self._write_int(self.spool_dir / "next_seq", self._next_seq)
            if not self._pending:
                return self.desired_state if self._failures == 0 else None
            if not ignore_backoff and time.monotonic() < self._next_attempt:
                return None
            try:
                while self._pending:
                    self._send_batch(list(self._pending[: self.max_batch]))
            except IngestUnavailable as exc:
                self._failures += 1
                delay = max(exc.retry_after_s, min(MAX_BACKOFF_S, 0.5 * 2 ** (self._failures - 1)))
                self._next_attempt = time.monotonic() + delay
                print(f"ingest: control plane unreachable ({exc}); retry in {delay:.1f}s", file=sys.stderr)
                return None
            self._failures = 0
            self._next_attempt = 0.0
            self._compact()
            return self.desired_state

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush with retries until everything is sent or timeout_s passes; events left stay spooled."""
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if self.flush(ignore_backoff=True) is not None or not self.pending_count:
                    break
                with self._lock:
                    wait = max(0.05, self._next_attempt - time.monotonic())
                if time.monotonic() + wait > deadline:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        break
                time.sleep(wait)
        finally:
            with self._lock:
                if not self._spool_fh.closed:
                    self._spool_fh.flush()
                    os.fsync(self._spool_fh.fileno())
                    self._spool_fh.close()
