"""The `triad` command: what the launch, runs, dataset, model and spend pages do, from a shell.

Exit status: 0 done; 1 the server refused (4xx); 2 a usage error (bad arguments, no login, a file that
cannot be read); 3 no answer from the server, a 5xx, or an answer that is not the API's; 130 interrupted
(Ctrl-C). Errors are one line on
stderr, `error: <message> (field: <field>)`, never a traceback. Read commands take --json for scripts.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import getpass
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from triad import __version__
from triad.client import ApiError, Client
from triad.config import ConfigError, config_path, normalise_url, remove_config, write_config
from triad.output import Column, Progress, block, clean, dump_json, table

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """Bad arguments that argparse cannot see (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


# --- small helpers ---------------------------------------------------------------------------------


def _name(value: Any) -> Any:
    """A nested object's name ({"id", "name"} → name), or the value as it is."""
    return value.get("name") if isinstance(value, Mapping) else value


def _time(value: Any) -> Any:
    """An ISO time to the minute, for tables (--json has the full value)."""
    return value[:16].replace("T", " ") if isinstance(value, str) and len(value) >= 16 else value


def _money(value: Any) -> Any:
    return f"{float(value):.2f}" if isinstance(value, (int, float, str)) and _is_float(value) else value


def _is_float(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _client(args: argparse.Namespace) -> Client:
    return Client()


def _emit(args: argparse.Namespace, value: Any, human: Callable[[Any, TextIO], None]) -> int:
    if getattr(args, "json", False):
        dump_json(value, sys.stdout)
    else:
        human(value, sys.stdout)
    return EXIT_OK


def _list(args: argparse.Namespace, items: Iterable[Mapping[str, Any]], columns: Sequence[Column]) -> int:
    rows = list(items)
    if args.json:
        dump_json(rows, sys.stdout)
    elif rows:
        table(rows, columns, sys.stdout)
    else:
        print("(none)", file=sys.stderr)
    return EXIT_OK


# --- login ---------------------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace) -> int:
    url = normalise_url(args.url)
    if sys.stdin.isatty():
        token = getpass.getpass(f"API token (make one at {url}/account/): ")
    else:  # piped in by a script: `triad login URL < token-file`
        token = sys.stdin.readline()
    token = token.strip()
    if not token:
        raise UsageError("no token given")
    with Client(url, token) as client:
        me = client.me()  # a bad token stops here (401), before anything is stored
    path = write_config(url, token)
    about = me.get("token") or {}
    scope = f" ({about.get('name')}, {about.get('scope')})" if about else ""
    print(f"logged in to {clean(url)} as {clean(me.get('username'))}{clean(scope)}; saved in {path}")
    return EXIT_OK


def cmd_logout(args: argparse.Namespace) -> int:
    """Revoke the stored token on the server, then forget it here. The file goes in every case: a
    token the server could not be told about is named, so that it can be revoked on the account page."""
    stored = remove_config()
    url, token = stored.get("url"), stored.get("token")
    if not url or not token:
        print(f"not logged in (no {config_path()})")
        return EXIT_OK
    try:
        with Client(url, token) as client:
            revoked = client.revoke_token()["revoked"]
    except ApiError as exc:
        if exc.status != 401:  # 401: revoked or expired already, which is what logging out wants
            raise ApiError(
                exc.status,
                f"logged out here, but the token could not be revoked ({exc.message}): revoke it on "
                f"{url}/account/",
            ) from None
        revoked = None
    what = f"token {clean(revoked)} revoked" if revoked else "the token had already ended"
    print(f"logged out of {clean(url)}: {what}, and forgotten here")
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace) -> int:
    with _client(args) as client:
        me = client.me()

        def human(me: Any, out: TextIO) -> None:
            teams = ", ".join(f"{clean(t.get('name'))} ({clean(t.get('role'))})" for t in me.get("teams", []))
            token = me.get("token") or {}
            pairs = [("server", client.url), ("user", me.get("username")), ("teams", teams or "-")]
            if token:
                expires = token.get("expires_at") or "never"
                pairs.append(("token", f"{token.get('name')} ({token.get('scope')}, expires {expires})"))
            block(pairs, out)

        return _emit(args, me, human)


# --- runs --------------------------------------------------------------------------------------------

RUN_COLUMNS: list[Column] = [
    ("ID", lambda r: r.get("id")),
    ("NAME", lambda r: r.get("name")),
    ("STATUS", lambda r: r.get("status")),
    ("TEAM", lambda r: _name(r.get("team"))),
    ("DATASET", lambda r: _dataset_label(r.get("dataset_version"))),
    ("STEP", lambda r: _steps(r)),
    ("REWARD", lambda r: (r.get("latest") or {}).get("reward/mean")),
    ("PASS", lambda r: (r.get("latest") or {}).get("pass_rate")),
    ("COST$", lambda r: _money(r.get("cost_usd"))),
    ("TAGS", lambda r: ",".join(r.get("tags") or [])),
    ("CREATED", lambda r: _time(r.get("created_at"))),
]


def _dataset_label(version: Any) -> Any:
    if isinstance(version, Mapping):
        return f"{_name(version.get('dataset'))} v{version.get('version')}"
    return version


def _steps(run: Mapping[str, Any]) -> str:
    step, total = run.get("step"), run.get("total_steps")
    return f"{step if step is not None else '-'}/{total}" if total else clean(step)


def _run_block(run: Mapping[str, Any], out: TextIO) -> None:
    pairs: list[tuple[str, Any]] = [
        ("id", run.get("id")),
        ("name", run.get("name")),
        ("status", run.get("status")),
        ("team", _name(run.get("team"))),
        ("user", run.get("user")),
        ("dataset", _dataset_label(run.get("dataset_version"))),
        ("model", _name(run.get("model"))),
        ("pool", run.get("pool")),
        ("external", "yes" if run.get("external") else "no"),
        ("step", _steps(run)),
        ("created", run.get("created_at")),
        ("started", run.get("started_at")),
        ("finished", run.get("finished_at")),
        ("cost_usd", _money(run.get("cost_usd"))),
        ("gpu_hours", run.get("gpu_hours")),
        ("tags", ", ".join(run.get("tags") or [])),
        ("archived", run.get("archived_at") or "no"),
    ]
    pairs += [(f"latest {key}", value) for key, value in (run.get("latest") or {}).items()]
    pairs.append(("url", run.get("url")))
    block(pairs, out)
    config = run.get("config") or {}
    if config:
        out.write("config:\n")
        block(((f"  {key}", value) for key, value in sorted(config.items())), out)


def cmd_runs_ls(args: argparse.Namespace) -> int:
    with _client(args) as client:
        runs = client.runs(
            q=args.q,
            status=args.status,
            dataset=args.dataset,
            sort=args.sort,
            limit=args.limit,
            tag=args.tag,
            model=args.model,
            user=args.user,
            archived=args.archived,
        )
        return _list(args, runs, RUN_COLUMNS)


def cmd_runs_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.run(args.id), _run_block)


def _run_line(verb: str) -> Callable[[Any, TextIO], None]:
    """One line for a write: what became of which run, and where to see it (`runs show` has the rest)."""

    def line(run: Any, out: TextIO) -> None:
        out.write(
            f'{verb} run {clean(run.get("id"))} "{clean(run.get("name"))}": {clean(run.get("status"))}'
            f"  {clean(run.get('url'))}\n"
        )

    return line


def cmd_runs_launch(args: argparse.Namespace) -> int:
    text = _read_text(args.config)
    with _client(args) as client:
        run = client.launch(text, idempotency_key=args.idempotency_key)
    return _emit(args, run, _run_line("launched"))


def cmd_runs_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.cancel(args.id), _run_line("cancelled"))


def cmd_runs_resume(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.resume(args.id), _run_line("resumed"))


def cmd_runs_clone(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.clone(args.id, name=args.name), _run_line("cloned as"))


def cmd_runs_tag(args: argparse.Namespace) -> int:
    """Add TAGs and take --remove ones off: the run's tags as read, changed, written back whole."""
    with _client(args) as client:
        tags = [t for t in client.run(args.id).get("tags") or [] if t not in set(args.remove or [])]
        tags += [t for t in args.tags if t not in tags]
        return _emit(args, client.update_run(args.id, tags=tags), _run_tags_line)


def _run_tags_line(run: Any, out: TextIO) -> None:
    out.write(f"run {clean(run.get('id'))} tags: {clean(', '.join(run.get('tags') or [])) or '(none)'}\n")


def cmd_runs_rename(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.update_run(args.id, name=args.name), _run_line("renamed"))


def cmd_runs_note(args: argparse.Namespace) -> int:
    text = _read_text(args.file)
    with _client(args) as client:
        return _emit(args, client.update_run(args.id, note=text), _run_line("annotated"))


def cmd_runs_archive(args: argparse.Namespace) -> int:
    with _client(args) as client:
        run = client.update_run(args.id, archived=not args.undo)
        return _emit(args, run, _run_line("unarchived" if args.undo else "archived"))


def cmd_runs_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        sys.stderr.write(
            f"error: deleting run {args.id} removes its metrics, generations and logs for good; "
            "add --yes to confirm\n"
        )
        return 2
    with _client(args) as client:
        answer = client.delete_run(args.id, checkpoints=args.checkpoints)

        def human(done: Any, out: TextIO) -> None:
            out.write(
                f"deleted run {clean(done.get('deleted'))} (checkpoints: {clean(done.get('checkpoints'))})\n"
            )

        return _emit(args, answer, human)


def cmd_runs_logs(args: argparse.Namespace) -> int:
    if args.all:
        return _runs_logs_all(args)
    if args.output:
        raise UsageError("-o/--output goes with --all (the whole log as a file)")
    with _client(args) as client:
        if args.follow:
            lines: Iterable[Mapping[str, Any]] = client.follow_logs(
                args.id, after=args.after, poll_s=args.poll
            )
        else:
            lines = client.logs(args.id, after=args.after, limit=args.limit)["items"]
        for line in lines:
            if args.json:
                sys.stdout.write(json.dumps(line) + "\n")
            else:
                when, level = clean(_time(line.get("time"))), clean(line.get("level"))
                sys.stdout.write(f"{when} {level:<7} {clean(line.get('message'), multiline=True)}\n")
            sys.stdout.flush()
    return EXIT_OK


def _runs_logs_all(args: argparse.Namespace) -> int:
    """The whole log as text: to a file as it is, or to the terminal with control characters escaped
    (a log is the run's output: it may hold escape sequences)."""
    if args.follow or args.json or args.after is not None or args.limit is not None:
        raise UsageError("--all is the whole log: without -f, --json, --after or --limit")
    with _client(args) as client:
        chunks = client.log_text(args.id)
        if args.output:
            written = _write_atomically(Path(args.output), chunks)
            print(f"wrote {written} bytes to {args.output}", file=sys.stderr)
            return EXIT_OK
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for chunk in chunks:
            sys.stdout.write(clean(decoder.decode(chunk), multiline=True))
        sys.stdout.write(clean(decoder.decode(b"", final=True), multiline=True))
        sys.stdout.flush()
    return EXIT_OK


def cmd_runs_create(args: argparse.Namespace) -> int:
    if not args.external:
        raise UsageError(
            "runs create makes external runs only (--external); launch a run with `triad runs launch`"
        )
    with _client(args) as client:
        answer = client.create_external_run(
            name=args.name,
            dataset_version=args.dataset,
            pool=args.pool,
            gpus=args.gpus,
            team=args.team,
            heartbeat_timeout_s=args.heartbeat_timeout,
        )
    if args.json:
        dump_json(answer, sys.stdout)
        return EXIT_OK
    run = answer["run"]
    _run_line("created external")(run, sys.stdout)
    print(f"run token: {answer['token']}")
    print("note: the run token is shown once and never again; give it to the trainer (docs/external-runs.md)")
    return EXIT_OK


# --- metrics -----------------------------------------------------------------------------------------


def cmd_metrics_keys(args: argparse.Namespace) -> int:
    with _client(args) as client:
        keys = client.metric_keys(args.run)
    if args.json:
        dump_json(keys, sys.stdout)
    else:
        sys.stdout.writelines(clean(key) + "\n" for key in keys)
    return EXIT_OK


def cmd_metrics_export(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.compare is None):
        raise UsageError("give one RUN, or --compare RUN,RUN,... (not both)")
    with _client(args) as client:
        if args.compare is not None:
            chunks = client.export_compare_metrics(args.compare, args.format, keys=args.keys)
        else:
            chunks = client.export_metrics(args.run, args.format, keys=args.keys)
        if args.output:
            written = _write_atomically(Path(args.output), chunks)
            print(f"wrote {written} bytes to {args.output}", file=sys.stderr)
        else:
            out = sys.stdout.buffer
            for chunk in chunks:
                out.write(chunk)
            out.flush()
    return EXIT_OK


def _write_atomically(path: Path, chunks: Iterable[bytes]) -> int:
    """Stream into a file beside `path`, renamed over it once complete: an interrupted export leaves
    no half-written file."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                written += len(chunk)
        os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would have made it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- datasets ----------------------------------------------------------------------------------------

VERSION_COLUMNS: list[Column] = [
    ("ID", lambda v: v.get("id")),
    ("DATASET", lambda v: _name(v.get("dataset"))),
    ("VERSION", lambda v: v.get("version")),
    ("STATUS", lambda v: v.get("status")),
    ("PROBLEMS", lambda v: v.get("problems")),
    ("HASH", lambda v: (v.get("content_hash") or "")[:12] or None),
    ("CREATED", lambda v: _time(v.get("created_at"))),
]


def cmd_datasets_ls(args: argparse.Namespace) -> int:
    def latest(d: Mapping[str, Any]) -> Any:
        version = d.get("latest_version")
        if not isinstance(version, Mapping):
            return version
        return f"v{version.get('version')} ({version.get('status')}, {version.get('problems')} problems)"

    columns: list[Column] = [
        ("ID", lambda d: d.get("id")),
        ("NAME", lambda d: d.get("name")),
        ("TEAM", lambda d: _name(d.get("team")) or "shared"),
        ("LATEST", latest),
    ]
    with _client(args) as client:
        return _list(args, client.datasets(limit=args.limit), columns)


def cmd_datasets_versions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _list(args, client.dataset_versions(args.id, limit=args.limit), VERSION_COLUMNS)


def cmd_datasets_problems(args: argparse.Namespace) -> int:
    columns: list[Column] = [
        ("ID", lambda p: p.get("id")),
        ("TASK_ID", lambda p: p.get("task_id")),
        ("STATUS", lambda p: p.get("status")),
        ("REASON", lambda p: p.get("reason") or None),
    ]
    with _client(args) as client:
        return _list(args, client.problems(args.version, status=args.status, limit=args.limit), columns)


def cmd_datasets_upload(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{args.file}: no such file")
    with _client(args) as client:
        version = client.upload_dataset(
            path, args.name, team=args.team, idempotency_key=args.idempotency_key, shared=args.shared
        )
        if args.wait:
            progress = Progress(f"verifying {clean(args.name)}")
            try:
                version = client.wait_for_verification(version["id"], poll_s=args.poll, progress=progress)
            finally:
                progress.close()
    if args.json:
        dump_json(version, sys.stdout)
    else:
        _version_block(version, sys.stdout)
    if version.get("status") == "not_queued":  # imported, but nothing will verify it: the broker's fault
        raise ApiError(
            503,
            f"version {version.get('id')} is stored but not being verified: {version.get('verify_error')}",
        )
    return EXIT_OK


def _version_block(version: Mapping[str, Any], out: TextIO) -> None:
    counts = version.get("counts") or {}
    pairs: list[tuple[str, Any]] = [
        ("id", version.get("id")),
        ("dataset", _name(version.get("dataset"))),
        ("version", version.get("version")),
        ("status", version.get("status")),
        ("problems", version.get("problems")),
    ]
    pairs += [(f"  {status}", n) for status, n in counts.items() if n]
    if version.get("verify_error"):
        pairs.append(("verify error", version["verify_error"]))
    pairs += [("content hash", version.get("content_hash")), ("url", version.get("url"))]
    block(pairs, out)


# --- generation jobs -----------------------------------------------------------------------------------

GENERATE_PARAMS = (
    "count", "topics", "seed_problem_ids", "difficulty", "kind", "temperature", "n", "max_tokens",
    "budget_usd", "budget_tokens", "usd_per_mtok_in", "usd_per_mtok_out", "timeout_s", "max_requests",
)  # fmt: skip


def cmd_datasets_generate(args: argparse.Namespace) -> int:
    key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""
    if args.api_key_env and not key:
        raise UsageError(f"--api-key-env {args.api_key_env}: that environment variable is not set")
    body: dict[str, Any] = {"base_url": args.base_url, "model": args.model, "api_key": key}
    body.update({name: getattr(args, name) for name in GENERATE_PARAMS if getattr(args, name) is not None})
    if args.reasoning:
        body["reasoning"] = True
    with _client(args) as client:
        job = client.generate(args.dataset, body)
        if args.wait:
            progress = Progress(f"generating (job {job.get('id')})")
            try:
                job = client.wait_for_generation(job["id"], poll_s=args.poll, progress=progress)
            finally:
                progress.close()
    return _emit(args, job, _job_block)


def cmd_datasets_job(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.generation_job(args.id), _job_block)


def cmd_datasets_cancel_job(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.cancel_generation_job(args.id), _job_block)


def _job_block(job: Any, out: TextIO) -> None:
    params = job.get("params") or {}
    pairs: list[tuple[str, Any]] = [
        ("id", job.get("id")),
        ("dataset", _name(job.get("dataset"))),
        ("status", job.get("status")),
        ("teacher", f"{job.get('model')} at {job.get('base_url')}"),
        ("accepted", f"{job.get('accepted')} of {params.get('count')}"),
        ("generated", job.get("generated")),
        ("rejected", job.get("rejected")),
    ]
    pairs += [(f"  {reason}", n) for reason, n in (job.get("rejected_by_reason") or {}).items()]
    pairs += [
        ("requests", job.get("requests")),
        ("tokens", f"{job.get('tokens_in')} in, {job.get('tokens_out')} out"),
        ("usd", _money(job.get("usd"))),
    ]
    if job.get("eta_s") is not None:
        pairs.append(("eta", f"{float(job['eta_s']):.0f} s"))
    if job.get("error"):
        pairs.append(("error", job["error"]))
    if job.get("result_version"):
        pairs.append(("result version", f"{job['result_version']} ({job.get('result_url')})"))
    pairs.append(("url", job.get("url")))
    block(pairs, out)


# --- models, spend, nodes ----------------------------------------------------------------------------


def cmd_models_ls(args: argparse.Namespace) -> int:
    columns: list[Column] = [
        ("ID", lambda m: m.get("id")),
        ("NAME", lambda m: m.get("name")),
        ("STATUS", lambda m: m.get("status")),
        ("POOL", lambda m: m.get("pool")),
        ("TEAM", lambda m: _name(m.get("team"))),
        ("SOURCE", lambda m: m.get("source")),
    ]
    with _client(args) as client:
        return _list(args, client.models(limit=args.limit), columns)


def cmd_models_register(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {}
    for key in ("tokenizer", "dtype", "pool"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.chat:
        fields["chat"] = True
    if args.stop:
        fields["stop"] = args.stop
    with _client(args) as client:
        model = client.register_model(name=args.name, source=args.source, team=args.team, **fields)
    keys = ("id", "name", "status", "error", "source", "tokenizer", "chat", "dtype", "pool", "team", "url")
    return _emit(
        args, model, lambda m, out: block(((k, _name(m.get(k))) for k in keys if m.get(k) != ""), out)
    )


def cmd_spend(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.csv:
            sys.stdout.write(client.spend_csv(args.by, since=args.since, until=args.until))
            return EXIT_OK
        answer = client.spend(args.by, since=args.since, until=args.until)
    if args.json:
        dump_json(answer, sys.stdout)
        return EXIT_OK
    rows = answer.get("rows") or []
    if rows:
        keys = list(rows[0].keys())
        columns: list[Column] = [
            (
                key.upper(),
                (lambda k: lambda row: _money(row.get(k)) if k.endswith("usd") else _name(row.get(k)))(key),
            )
            for key in keys
        ]
        table(rows, columns, sys.stdout)
    else:
        print("(no spend in the period)", file=sys.stderr)
    print(f"total: ${_money(answer.get('total_usd'))}")
    return EXIT_OK


def cmd_nodes_ls(args: argparse.Namespace) -> int:
    columns: list[Column] = [
        ("ID", lambda n: n.get("id")),
        ("NAME", lambda n: n.get("name")),
        ("POOL", lambda n: n.get("pool")),
        ("GPUS", lambda n: n.get("gpus")),
        ("STATUS", lambda n: n.get("status")),
        ("LAST_SEEN", lambda n: _time(n.get("last_seen"))),
    ]
    with _client(args) as client:
        return _list(args, client.nodes(limit=args.limit), columns)


def cmd_alerts_ls(args: argparse.Namespace) -> int:
    columns: list[Column] = [
        ("ID", lambda r: r.get("id")),
        ("RULE", lambda r: r.get("name") or r.get("description")),
        ("ON", lambda r: f"run {r['run']}" if r.get("run") else f"team {r.get('team')}"),
        ("ENABLED", lambda r: "yes" if r.get("enabled") else "no"),
    ]
    with _client(args) as client:
        return _list(args, client.alert_rules(run=args.run, limit=args.limit), columns)


def cmd_alerts_notifications(args: argparse.Namespace) -> int:
    columns: list[Column] = [
        ("FIRED", lambda n: _time(n.get("fired_at"))),
        ("RULE", lambda n: n.get("rule")),
        ("RUN", lambda n: n.get("run")),
        ("READ", lambda n: "yes" if n.get("read") else "no"),
        ("MESSAGE", lambda n: n.get("message")),
    ]
    with _client(args) as client:
        return _list(args, client.alert_notifications(unread=args.unread, limit=args.limit), columns)


def _sweep_block(sweep: Mapping[str, Any], out: TextIO) -> None:
    block(
        [
            ("id", sweep.get("id")),
            ("name", sweep.get("name")),
            ("state", sweep.get("state")),
            ("method", sweep.get("method")),
            ("team", sweep.get("team")),
            ("axes", ", ".join(sweep.get("axes") or {})),
            ("best run", sweep.get("best_run")),
            ("url", sweep.get("url")),
        ],
        out,
    )
    runs = sweep.get("runs") or []
    if runs:
        out.write("runs:\n")
        table(runs, SWEEP_RUN_COLUMNS, out)


SWEEP_RUN_COLUMNS: list[Column] = [
    ("ID", lambda r: r.get("id")),
    ("NAME", lambda r: r.get("name")),
    ("PARAMS", lambda r: " ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())),
    ("STATUS", lambda r: r.get("status")),
    ("STEP", lambda r: f"{r.get('last_step') if r.get('last_step') is not None else '-'}/{r.get('steps')}"),
    ("BEST_PASS", lambda r: r.get("best_pass_rate")),
    ("FINAL_PASS", lambda r: r.get("final_pass_rate")),
]
SWEEP_COLUMNS: list[Column] = [
    ("ID", lambda s: s.get("id")),
    ("NAME", lambda s: s.get("name")),
    ("STATE", lambda s: s.get("state")),
    ("METHOD", lambda s: s.get("method")),
    ("RUNS", lambda s: len(s.get("runs") or [])),
    ("BEST_RUN", lambda s: s.get("best_run")),
    ("CREATED", lambda s: _time(s.get("created_at"))),
]


def cmd_sweeps_ls(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _list(args, client.sweeps(limit=args.limit), SWEEP_COLUMNS)


def cmd_sweeps_show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.sweep(args.id), _sweep_block)


def _sweep_line(verb: str) -> Callable[[Any, TextIO], None]:
    def line(sweep: Any, out: TextIO) -> None:
        out.write(
            f'{verb} sweep {clean(sweep.get("id"))} "{clean(sweep.get("name"))}": '
            f"{len(sweep.get('runs') or [])} runs, {clean(sweep.get('state'))}  {clean(sweep.get('url'))}\n"
        )

    return line


def cmd_sweeps_create(args: argparse.Namespace) -> int:
    text = _read_text(args.file)
    with _client(args) as client:
        sweep = client.create_sweep(text, idempotency_key=args.idempotency_key)
    return _emit(args, sweep, _sweep_line("launched"))


def cmd_sweeps_stop(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _emit(args, client.stop_sweep(args.id), _sweep_line("stopped"))


def _read_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


# --- the parser --------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="triad", description="Triad from the command line (docs/api.md).")
    parser.add_argument("--version", action="version", version=f"triad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")
    limited = _Parser(add_help=False)
    limited.add_argument("--limit", type=_positive, help="at most this many items (all pages by default)")

    login = commands.add_parser(
        "login", help="store a server's URL and an API token made on its /account/ page"
    )
    login.add_argument("url", metavar="URL")
    login.set_defaults(func=cmd_login)
    commands.add_parser("logout", help="forget the stored token").set_defaults(func=cmd_logout)
    commands.add_parser("whoami", parents=[as_json], help="who the token belongs to").set_defaults(
        func=cmd_whoami
    )

    runs = commands.add_parser(
        "runs", help="list, launch, cancel, resume, clone, tag, rename, archive, delete runs; their logs"
    ).add_subparsers(dest="runs_command", required=True, metavar="ACTION", parser_class=_Parser)
    ls = runs.add_parser("ls", parents=[as_json, limited], help="list runs (newest first)")
    ls.add_argument("--status", help="only runs in this state (running, failed, ...)")
    ls.add_argument("--dataset", type=int, metavar="DATASET_ID", help="only runs on this dataset")
    ls.add_argument("--q", help="only runs whose name contains this")
    ls.add_argument("--sort", choices=["newest", "oldest", "reward", "cost"])
    ls.add_argument("--tag", help="only runs with this tag")
    ls.add_argument("--model", type=int, metavar="MODEL_ID", help="only runs of this registered model")
    ls.add_argument("--user", metavar="USERNAME", help="only runs this user launched")
    ls.add_argument(
        "--archived", choices=["only", "all"], help="archived runs too (all) or only them (default: hidden)"
    )
    ls.set_defaults(func=cmd_runs_ls)
    show = runs.add_parser("show", parents=[as_json], help="one run")
    show.add_argument("id", type=int, metavar="ID")
    show.set_defaults(func=cmd_runs_show)
    launch = runs.add_parser("launch", parents=[as_json], help="launch a run from a YAML config ('-': stdin)")
    launch.add_argument("config", metavar="CONFIG.yaml")
    launch.add_argument(
        "--idempotency-key",
        help="send this key (default: a fresh random one; the same key never launches twice)",
    )
    launch.set_defaults(func=cmd_runs_launch)
    for action, func, what in (
        ("cancel", cmd_runs_cancel, "cancel a run"),
        ("resume", cmd_runs_resume, "resume a stopped run from its checkpoint"),
    ):
        sub = runs.add_parser(action, parents=[as_json], help=what)
        sub.add_argument("id", type=int, metavar="ID")
        sub.set_defaults(func=func)
    tag = runs.add_parser("tag", parents=[as_json], help="add (and --remove) tags of a run")
    tag.add_argument("id", type=int, metavar="ID")
    tag.add_argument("tags", nargs="*", metavar="TAG")
    tag.add_argument("--remove", action="append", metavar="TAG", help="take this tag off (repeatable)")
    tag.set_defaults(func=cmd_runs_tag)
    rename = runs.add_parser("rename", parents=[as_json], help="rename a run")
    rename.add_argument("id", type=int, metavar="ID")
    rename.add_argument("name", metavar="NAME")
    rename.set_defaults(func=cmd_runs_rename)
    note = runs.add_parser(
        "note", parents=[as_json], help="set a run's Markdown note from a file ('-': stdin)"
    )
    note.add_argument("id", type=int, metavar="ID")
    note.add_argument("file", metavar="FILE.md")
    note.set_defaults(func=cmd_runs_note)
    archive = runs.add_parser("archive", parents=[as_json], help="hide a run from the runs list")
    archive.add_argument("id", type=int, metavar="ID")
    archive.add_argument("--undo", action="store_true", help="bring it back")
    archive.set_defaults(func=cmd_runs_archive)
    delete = runs.add_parser("delete", parents=[as_json], help="delete a run that has ended (team admins)")
    delete.add_argument("id", type=int, metavar="ID")
    delete.add_argument("--yes", action="store_true", help="confirm: it cannot be undone")
    delete.add_argument(
        "--checkpoints", action="store_true", help="also delete its checkpoints (exported models stay)"
    )
    delete.set_defaults(func=cmd_runs_delete)
    clone = runs.add_parser("clone", parents=[as_json], help="launch a copy of a run")
    clone.add_argument("id", type=int, metavar="ID")
    clone.add_argument("--name", help="the copy's name")
    clone.set_defaults(func=cmd_runs_clone)
    logs = runs.add_parser(
        "logs", parents=[as_json], help="a run's log lines (--json: one JSON object a line)"
    )
    logs.add_argument("id", type=int, metavar="ID")
    logs.add_argument("-f", "--follow", action="store_true", help="wait for new lines until the run finishes")
    logs.add_argument("--after", type=int, help="only lines after this sequence number")
    logs.add_argument("--limit", type=_positive, help="at most this many lines (without -f)")
    logs.add_argument("--poll", type=float, default=2.0, help="seconds between polls with -f (default 2)")
    logs.add_argument(
        "--all", action="store_true", help="the whole log, every source, as text (the run page's download)"
    )
    logs.add_argument("-o", "--output", metavar="FILE", help="with --all: write it to FILE")
    logs.set_defaults(func=cmd_runs_logs)
    create = runs.add_parser(
        "create",
        parents=[as_json],
        help="create an external run that your own trainer feeds; prints its token",
    )
    create.add_argument("--external", action="store_true", help="required: the only kind made here")
    create.add_argument(
        "--dataset", type=int, required=True, metavar="VERSION_ID", help="the dataset version's id"
    )
    create.add_argument("--pool", required=True, help="the pool whose GPU price bills it")
    create.add_argument("--gpus", type=_positive, required=True, help="GPUs the trainer uses")
    create.add_argument("--name", required=True)
    create.add_argument("--team", type=int, help="the team's id (default: your first team)")
    create.add_argument(
        "--heartbeat-timeout", type=_positive, metavar="S", help="seconds of silence before lost"
    )
    create.set_defaults(func=cmd_runs_create)

    metrics = commands.add_parser("metrics", help="a run's metrics").add_subparsers(
        dest="metrics_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    export = metrics.add_parser("export", help="every point of a run's metrics, streamed (csv or JSON lines)")
    export.add_argument("run", type=int, metavar="RUN", nargs="?")
    export.add_argument(
        "--compare", metavar="RUN,RUN,...", help="several runs in one file (a `run` column), instead of RUN"
    )
    export.add_argument(
        "--format", choices=["csv", "json"], default="csv", help="json: one JSON object a line"
    )
    export.add_argument("--keys", help="only these metric keys, comma-separated")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.set_defaults(func=cmd_metrics_export)
    keys = metrics.add_parser("keys", parents=[as_json], help="the metric keys a run has")
    keys.add_argument("run", type=int, metavar="RUN")
    keys.set_defaults(func=cmd_metrics_keys)

    datasets = commands.add_parser(
        "datasets", help="list and upload datasets; versions and problems; generation jobs"
    ).add_subparsers(dest="datasets_command", required=True, metavar="ACTION", parser_class=_Parser)
    datasets.add_parser("ls", parents=[as_json, limited], help="list datasets").set_defaults(
        func=cmd_datasets_ls
    )
    upload = datasets.add_parser(
        "upload", parents=[as_json], help="upload a JSONL file as a dataset's new version"
    )
    upload.add_argument("file", metavar="FILE")
    upload.add_argument(
        "--name", required=True, help="the dataset's name (a new one, or a new version of it)"
    )
    upload.add_argument("--team", type=int, help="the team's id (default: your first team)")
    upload.add_argument("--shared", action="store_true", help="into the shared area (site admins only)")
    upload.add_argument(
        "--wait", action="store_true", help="wait (with a progress bar) until verification ends"
    )
    upload.add_argument(
        "--poll", type=float, default=1.0, help="seconds between polls with --wait (default 1)"
    )
    upload.add_argument("--idempotency-key", help="send this key (default: a fresh random one)")
    upload.set_defaults(func=cmd_datasets_upload)
    versions = datasets.add_parser("versions", parents=[as_json, limited], help="a dataset's versions")
    versions.add_argument("id", type=int, metavar="DATASET_ID")
    versions.set_defaults(func=cmd_datasets_versions)
    problems = datasets.add_parser("problems", parents=[as_json, limited], help="a version's problems")
    problems.add_argument("version", type=int, metavar="VERSION_ID")
    problems.add_argument("--status", choices=["pending", "verified", "failing", "flaky", "weak_tests"])
    problems.set_defaults(func=cmd_datasets_problems)
    generate = datasets.add_parser(
        "generate",
        parents=[as_json],
        help="have a teacher model write problems: the ones that pass the gate become a new version",
        description='Launch a generation job (docs/datasets.md, "Generation jobs") on an OpenAI-compatible '
        "endpoint. The API key is read from the environment variable --api-key-env names (never from the "
        "command line, where shell history and ps would show it); it is stored encrypted and never shown.",
    )
    generate.add_argument("dataset", type=int, metavar="DATASET_ID")
    generate.add_argument(
        "--base-url", required=True, help="e.g. https://api.openai.com/v1 or http://vllm:8000/v1"
    )
    generate.add_argument("--model", required=True, help="the model's name at that endpoint")
    generate.add_argument("--api-key-env", metavar="VAR", help="the environment variable holding the API key")
    generate.add_argument("--count", type=_positive, help="accepted problems to reach (default 20)")
    generate.add_argument("--topics", help="comma-separated topics; each request takes the next")
    generate.add_argument("--seed-problem-ids", help="comma-separated problem ids to vary")
    generate.add_argument("--difficulty", help="easy, medium (default), hard")
    generate.add_argument("--kind", choices=["function", "program"], help="problem kind (default function)")
    generate.add_argument("--temperature", type=float)
    generate.add_argument(
        "--reasoning", action="store_true", help="ask for a reasoning trace with each problem"
    )
    generate.add_argument("--n", type=_positive, help="problems asked for per request (default 4)")
    generate.add_argument("--max-tokens", type=_positive, help="completion tokens per request")
    generate.add_argument("--budget-usd", type=float, help="stop when this many dollars are spent")
    generate.add_argument("--budget-tokens", type=_positive, help="stop when this many tokens are spent")
    generate.add_argument("--usd-per-mtok-in", type=float, help="price per million prompt tokens")
    generate.add_argument("--usd-per-mtok-out", type=float, help="price per million completion tokens")
    generate.add_argument("--timeout-s", type=float, help="seconds one teacher request may take (default 60)")
    generate.add_argument("--max-requests", type=_positive, help="give up after this many teacher requests")
    generate.add_argument("--wait", action="store_true", help="wait (with a progress bar) until the job ends")
    generate.add_argument(
        "--poll", type=float, default=2.0, help="seconds between polls with --wait (default 2)"
    )
    generate.set_defaults(func=cmd_datasets_generate)
    job = datasets.add_parser("job", parents=[as_json], help="a generation job's progress")
    job.add_argument("id", type=int, metavar="JOB_ID")
    job.set_defaults(func=cmd_datasets_job)
    cancel_job = datasets.add_parser("cancel-job", parents=[as_json], help="cancel a generation job")
    cancel_job.add_argument("id", type=int, metavar="JOB_ID")
    cancel_job.set_defaults(func=cmd_datasets_cancel_job)

    models = commands.add_parser("models", help="the model registry").add_subparsers(
        dest="models_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    models.add_parser("ls", parents=[as_json, limited], help="list models").set_defaults(func=cmd_models_ls)
    register = models.add_parser(
        "register", parents=[as_json], help="register a model (as the registry page)"
    )
    register.add_argument("--name", required=True, help="what the launch form calls it; unique")
    register.add_argument(
        "--source", required=True, help="a directory on the pool's nodes, or a cached hub id"
    )
    register.add_argument("--tokenizer", help="another directory or hub id (default: the model's own)")
    register.add_argument(
        "--chat", action="store_true", help="an instruct model: prompts use its chat template"
    )
    register.add_argument("--dtype", help="the dtype to train in (bf16, fp16, fp32)")
    register.add_argument("--stop", action="append", help="an extra stop string (repeat for more)")
    register.add_argument("--pool", help="whose nodes hold it")
    register.add_argument("--team", type=int, help="the team's id (default: your first team)")
    register.set_defaults(func=cmd_models_register)

    spend = commands.add_parser("spend", parents=[as_json], help="compute spend, grouped")
    spend.add_argument("--by", choices=["run", "user", "team", "day"], default="run")
    spend.add_argument("--since", metavar="YYYY-MM-DD")
    spend.add_argument("--until", metavar="YYYY-MM-DD")
    spend.add_argument("--csv", action="store_true", help="the server's CSV")
    spend.set_defaults(func=cmd_spend)

    sweeps = commands.add_parser("sweeps", help="launch, list, show and stop sweeps").add_subparsers(
        dest="sweeps_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    sweeps.add_parser("ls", parents=[as_json, limited], help="list sweeps").set_defaults(func=cmd_sweeps_ls)
    sweep_create = sweeps.add_parser(
        "create", parents=[as_json], help="launch a sweep from a YAML file ('-': stdin)"
    )
    sweep_create.add_argument("--file", required=True, metavar="SWEEP.yaml")
    sweep_create.add_argument("--idempotency-key", help="send this key (the same key never launches twice)")
    sweep_create.set_defaults(func=cmd_sweeps_create)
    for action, func, what in (
        ("show", cmd_sweeps_show, "one sweep and its runs"),
        ("stop", cmd_sweeps_stop, "stop a sweep: cancel its active runs"),
    ):
        sub = sweeps.add_parser(action, parents=[as_json], help=what)
        sub.add_argument("id", type=int, metavar="ID")
        sub.set_defaults(func=func)

    nodes = commands.add_parser("nodes", help="the GPU nodes").add_subparsers(
        dest="nodes_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    nodes.add_parser("ls", parents=[as_json, limited], help="list nodes").set_defaults(func=cmd_nodes_ls)

    alerts = commands.add_parser("alerts", help="alert rules and your notifications").add_subparsers(
        dest="alerts_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    alerts_ls = alerts.add_parser("ls", parents=[as_json, limited], help="list alert rules")
    alerts_ls.add_argument("--run", type=int, help="only those watching this run")
    alerts_ls.set_defaults(func=cmd_alerts_ls)
    notes = alerts.add_parser("notifications", parents=[as_json, limited], help="your alert notifications")
    notes.add_argument("--unread", action="store_true", help="only those not read yet")
    notes.set_defaults(func=cmd_alerts_notifications)
    return parser


def _fail(message: str, code: int) -> int:
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except ApiError as exc:
        return _fail(str(exc), EXIT_REFUSED if 400 <= exc.status < 500 else EXIT_UNREACHABLE)
    except (ConfigError, UsageError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`triad runs ls | head`): stop quietly, and let Python's exit-time flush
        # of stdout find nothing to write to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a local file: the output of an export, say
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", EXIT_USAGE)
    except Exception as exc:  # an answer of a shape this version does not know, or a bug: still one line
        if os.environ.get("TRIAD_DEBUG"):
            raise
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} (TRIAD_DEBUG=1 shows the traceback)", EXIT_UNREACHABLE
        )
