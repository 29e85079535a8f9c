import json
import time
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.management.users import command_user
from datasets_app.models import DatasetVersion
from runs.evals.models import EvalJob, EvalJobStatus
from runs.evals.services import EvalJobError, eval_job_create
from runs.models import Run
from runs.registry.models import RegisteredModel
from workers.spec import EVAL_SETS, SETTINGS

POLL_S = 0.5


class Command(BaseCommand):
    help = (
        "Evaluate a registered model (model:NAME) or a finished run's newest checkpoint (run:ID) on a "
        "built-in benchmark (--set) or a dataset version's verified problems (--dataset-version), on a "
        "node of its pool. With --wait, print the totals."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subject", metavar="MODEL_OR_RUN", help="model:NAME (or just NAME), or run:ID")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--set", choices=sorted(EVAL_SETS), help="a built-in benchmark")
        where.add_argument("--dataset-version", type=int, metavar="ID", help="a dataset version's id")
        parser.add_argument("--problems", type=int, default=20, help="the benchmark's first N (0: all)")
        parser.add_argument("--protocol", choices=SETTINGS["eval_protocol"].choices, default=None)
        parser.add_argument("--samples", type=int, default=None, help=SETTINGS["eval_samples"].help)
        parser.add_argument("--k", type=int, default=None, help=SETTINGS["eval_k"].help)
        parser.add_argument("--temperature", type=float, default=None, help=SETTINGS["eval_temperature"].help)
        parser.add_argument("--max-new-tokens", type=int, default=None, help=SETTINGS["max_new_tokens"].help)
        parser.add_argument("--user", default=None, help="who evaluates (default: the first superuser)")
        parser.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for the result")

    def handle(self, *args: object, **options: Any) -> None:
        user = command_user(options["user"])
        subject = self._subject(str(options["subject"]))
        version = None
        if options["dataset_version"] is not None:
            version = DatasetVersion.objects.filter(pk=options["dataset_version"]).first()
            if version is None:
                raise CommandError(f"no dataset version {options['dataset_version']}")
        given = {
            "eval_protocol": options["protocol"],
            "eval_samples": options["samples"],
            "eval_k": options["k"],
            "eval_temperature": options["temperature"],
            "max_new_tokens": options["max_new_tokens"],
        }
        try:
            job = eval_job_create(
                user=user,
                **subject,
                dataset_version=version,
                builtin_set=options["set"] or "",
                builtin_problems=options["problems"],
                protocol={key: value for key, value in given.items() if value is not None},
            )
        except (EvalJobError, PermissionDenied) as exc:
            field = f"{exc.field}: " if isinstance(exc, EvalJobError) else ""
            raise CommandError(f"not evaluated: {field}{exc}") from None
        wait = float(options["wait"])
        job = self._wait(job, wait)
        if job.status == EvalJobStatus.FAILED:
            raise CommandError(f"evaluation #{job.pk}: failed: {job.error}")
        if job.is_waiting and wait:
            raise CommandError(
                f"evaluation #{job.pk}: {job.status}, no result after {wait:g} s: is a worker on "
                f"gpu.{job.pool} running? (its page shows the result when it comes)"
            )
        if job.is_waiting:
            self.stdout.write(
                f"evaluation #{job.pk} queued: a worker on gpu.{job.pool} evaluates {job.subject_label} on "
                f"{job.set_label} (its page shows the result; --wait SECONDS waits for it)"
            )
            return
        self.stdout.write(f"evaluation #{job.pk}: {job.subject_label} on {job.set_label}")
        self.stdout.write(json.dumps(job.totals, sort_keys=True))

    @staticmethod
    def _subject(text: str) -> dict[str, Any]:
        kind, _, value = text.partition(":")
        if kind == "run" and value.isdigit():
            run = Run.objects.filter(pk=int(value)).first()
            if run is None:
                raise CommandError(f"no run #{value}")
            return {"run": run}
        name = value if kind == "model" else text
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            raise CommandError(f"no model named {name!r} (a run is run:ID)")
        return {"model": model}

    @staticmethod
    def _wait(job: EvalJob, seconds: float) -> EvalJob:
        deadline = time.monotonic() + seconds
        while True:
            job.refresh_from_db()
            if not job.is_waiting or time.monotonic() >= deadline:
                return job
            time.sleep(POLL_S)
