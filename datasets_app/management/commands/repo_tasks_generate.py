import json
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from datasets_app.repo_smith import DROP_REASONS, PACKAGES, GenerationError, generate
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
                report = generate(package, count=share, seed=seed, verify=bool(options["verify"]))
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
