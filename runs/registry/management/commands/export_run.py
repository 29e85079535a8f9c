import time

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.management.users import command_user
from runs.models import Run
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import ModelRegisterError, model_export

POLL_S = 0.5
WAITING = (ModelStatus.EXPORTING, ModelStatus.PENDING)


class Command(BaseCommand):
    help = (
        "Export a finished run's newest checkpoint as a new model (a node of the run's pool writes it in "
        "Hugging Face format next to the checkpoints, then inspects it). With --wait, print the answer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id", type=int)
        parser.add_argument("name", help="the new model's name (unique)")
        parser.add_argument("--user", default=None, help="who exports it (default: the first superuser)")
        parser.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for the answer")

    def handle(self, *args: object, **options: object) -> None:
        user = command_user(options["user"])
        run_id = int(options["run_id"])  # type: ignore[call-overload]
        run = Run.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run #{run_id}")
        try:
            model = model_export(user=user, run=run, name=str(options["name"]))
        except (ModelRegisterError, PermissionDenied) as exc:
            field = f"{exc.field}: " if isinstance(exc, ModelRegisterError) else ""
            raise CommandError(f"not exported: {field}{exc}") from None
        wait = float(options["wait"])  # type: ignore[arg-type]
        model = self._wait(model, wait)
        if model.status == ModelStatus.REFUSED:
            raise CommandError(f"{model.name}: refused: {model.error}")
        if model.status in WAITING and wait:
            raise CommandError(
                f"{model.name}: {model.status}, no answer after {wait:g} s: is a worker on gpu.{model.pool} "
                "running? (the model's page shows its answer when it comes)"
            )
        if model.status in WAITING:
            self.stdout.write(
                f"exporting run #{run.pk} as {model.name}: a worker on gpu.{model.pool} writes it "
                "(the model's page shows its answer; --wait SECONDS waits for it)"
            )
            return
        self.stdout.write(
            f"{model.name}: ready: exported from run #{run.pk} at step {model.from_step} to {model.source}; "
            f"{model.architecture}, {model.params_label} parameters ({model.params}), on {model.inspected_by}"
        )

    @staticmethod
    def _wait(model: RegisteredModel, seconds: float) -> RegisteredModel:
        deadline = time.monotonic() + seconds
        while True:
            model.refresh_from_db()
            if model.status not in WAITING or time.monotonic() >= deadline:
                return model
            time.sleep(POLL_S)
