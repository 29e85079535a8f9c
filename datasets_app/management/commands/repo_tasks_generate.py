import contextlib
import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from datasets_app.repo_smith import DROP_REASONS, PACKAGES, GenerationError, generate
from datasets_app.repo_statements import TeacherStatementWriter
from datasets_app.teacher import Teacher, TeacherConfig, TeacherError
from workers.sandbox import SandboxUnavailable


class Command(BaseCommand):
    help = (
        "Write repository tasks (Triad's triad-repo JSONL) made by injecting bugs into the packages that "
        "ship with Triad, each verified in the sandbox (deterministic per --seed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
        parser.add_argument(
            "--count", type=int, default=None, help="how many tasks in all (default: every one there is)"
        )
        parser.add_argument("--seed", type=int, default=0, help="which mutants are tried first")
        parser.add_argument(
            "--package", choices=PACKAGES, default=None, help="one package only (default: all of them)"
        )

        parser.add_argument(
            "--verify",
            action="store_true",
            help="also put each task through the dataset gate (workers.repo.verify) and keep the verified",
        )
        parser.add_argument(
            "--teacher-url",
            default="",
            help="an OpenAI-compatible endpoint's base URL, with its /v1 (http://host:8000/v1), to write "
            "each statement as a user's bug report (default: the template statement)",
        )
        parser.add_argument("--teacher-model", default="")
        parser.add_argument(
            "--teacher-key-env",
            default="OPENAI_API_KEY",
            help="the environment variable holding the endpoint's API key (unset: no key)",
        )
        parser.add_argument("--teacher-timeout", type=float, default=60.0, help="seconds per request")
        parser.add_argument(
            "--teacher-usd-per-mtok-in", type=float, default=0.0, help="price of prompt tokens"
        )
        parser.add_argument(
            "--teacher-usd-per-mtok-out", type=float, default=0.0, help="price of completion tokens"
        )

    def handle(self, *args: object, **options: object) -> None:
        out = options["out"]
        assert isinstance(out, Path)
        count = options["count"]
        if count is not None and (not isinstance(count, int) or count < 1):
            raise CommandError("--count must be at least 1")
        if not out.parent.is_dir():
            raise CommandError(f"--out {out}: the directory {out.parent} does not exist")
        seed = options["seed"]
        assert isinstance(seed, int)
        packages = [str(options["package"])] if options["package"] else list(PACKAGES)
        writer = self._teacher_writer(options)
        with contextlib.ExitStack() as stack:
            if writer is not None:
                stack.callback(writer.teacher.close)
            # --count is shared out over the packages, the first ones taking the remainder.
            shares: list[int | None] = [None] * len(packages)
            if isinstance(count, int):
                base, extra = divmod(count, len(packages))
                shares = [base + (1 if i < extra else 0) for i in range(len(packages))]
            lines: list[str] = []
            tried = 0
            dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
            for package, share in zip(packages, shares, strict=True):
                if share == 0:
                    continue
                try:
                    report = generate(
                        package,
                        count=share,
                        seed=seed,
                        verify=bool(options["verify"]),
                        statement_writer=writer,
                    )
                except TeacherError as exc:  # only "auth" gets here: every later request would fail alike
                    assert writer is not None
                    raise CommandError(
                        f"the teacher at {writer.teacher.config.base_url} refused the key from "
                        f"${options['teacher_key_env']} ({exc}); nothing written"
                    ) from None
                except SandboxUnavailable as exc:
                    raise CommandError(f"the sandbox is not available, nothing written: {exc}") from None
                except GenerationError as exc:
                    raise CommandError(f"{exc}; nothing written") from None
                lines.extend(json.dumps(task.to_record(), sort_keys=True) for task in report.tasks)
                tried += report.tried
                for reason, n in report.dropped.items():
                    dropped[reason] = dropped.get(reason, 0) + n
                self.stdout.write(
                    f"{package}: {len(report.tasks)} tasks kept of {report.tried} mutants tried "
                    f"({report.suite_size} tests, {report.seconds:.0f} s)"
                )
                for note in report.notes[:5]:
                    self.stdout.write(f"  {note}")
            # Written to a temporary file beside the target and renamed: never a half-written file.
            fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write("".join(f"{line}\n" for line in lines))
                os.replace(tmp, out)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            reasons = ", ".join(f"{reason} {n}" for reason, n in dropped.items() if n) or "none"
            self.stdout.write(
                f"wrote {len(lines)} tasks to {out}: kept {len(lines)} / tried {tried}; dropped: {reasons}"
            )
            if writer is not None:
                stats = writer.stats
                why = ", ".join(f"{reason} {n}" for reason, n in sorted(stats.fallbacks.items())) or "none"
                usd = stats.usd(
                    usd_per_mtok_in=float(str(options["teacher_usd_per_mtok_in"])),
                    usd_per_mtok_out=float(str(options["teacher_usd_per_mtok_out"])),
                )
                self.stdout.write(
                    f"statements: {stats.written} written by the teacher ({writer.template_version}), "
                    f"{sum(stats.fallbacks.values())} fell back to the template ({why}); "
                    f"teacher tokens {stats.tokens_in} in, {stats.tokens_out} out, ${usd:.4f}"
                )

    def _teacher_writer(self, options: dict[str, object]) -> TeacherStatementWriter | None:
        """The teacher's statement writer when --teacher-url is given; the key is read from the
        environment variable --teacher-key-env names, never from a flag, and never printed."""
        if not options["teacher_url"]:
            return None
        if not options["teacher_model"]:
            raise CommandError("--teacher-model is required with --teacher-url")
        timeout = options["teacher_timeout"]
        assert isinstance(timeout, float)
        if timeout <= 0:
            raise CommandError("--teacher-timeout must be positive")
        for name in ("teacher_usd_per_mtok_in", "teacher_usd_per_mtok_out"):
            price = options[name]
            assert isinstance(price, float)
            if price < 0:
                raise CommandError(f"--{name.replace('_', '-')} must not be negative")
        config = TeacherConfig(
            base_url=str(options["teacher_url"]),
            model=str(options["teacher_model"]),
            api_key=os.environ.get(str(options["teacher_key_env"]), ""),
            timeout_s=timeout,
        )
        return TeacherStatementWriter(Teacher(config))
