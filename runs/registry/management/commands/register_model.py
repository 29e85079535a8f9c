import argparse
import time

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.accounts.models import DEFAULT_TEAM, Team
from controlplane.management.users import command_user
from runs.registry.models import ModelDtype, ModelStatus, RegisteredModel
from runs.registry.services import ModelRegisterError, model_register

POLL_S = 0.5


class Command(BaseCommand):
    help = (
        "Register a Hugging Face model (a directory on the pool's nodes, or a hub id in their local "
        "cache); a node of the pool inspects it. With --wait, print its answer."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("source", help="a directory on the pool's nodes, or a cached hub id")
        parser.add_argument("--tokenizer", default="", help="a directory or hub id (default: the model's)")
        parser.add_argument(
            "--chat", action=argparse.BooleanOptionalAction, default=False, help="an instruct model"
        )
        parser.add_argument("--dtype", choices=ModelDtype.values, default=ModelDtype.BF16)
        parser.add_argument("--stop", action="append", default=[], help="an extra stop string (repeatable)")
        parser.add_argument("--pool", default="", help="whose nodes hold it (default: TRIAD_DEFAULT_POOL)")
        parser.add_argument("--team", default=DEFAULT_TEAM, help=f"the owning team (default: {DEFAULT_TEAM})")
        parser.add_argument("--user", default=None, help="who registers it (default: the first superuser)")
        parser.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for the answer")

    def handle(self, *args: object, **options: object) -> None:
        user = command_user(options["user"])
        team_name = str(options["team"])
        team = Team.objects.filter(name=team_name).first()
        if team is None and team_name == DEFAULT_TEAM:
            team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM)
        if team is None:
            raise CommandError(f"no team named {team_name!r}")
        try:
            model = model_register(
                user=user,
                name=str(options["name"]),
                source=str(options["source"]),
                tokenizer=str(options["tokenizer"]),
                chat=bool(options["chat"]),
                dtype=str(options["dtype"]),
                stop=[str(s) for s in options["stop"]],  # type: ignore[attr-defined]
                pool=str(options["pool"]),
                team=team,
            )
        except (ModelRegisterError, PermissionDenied) as exc:
            field = f"{exc.field}: " if isinstance(exc, ModelRegisterError) else ""
            raise CommandError(f"not registered: {field}{exc}") from None
        model = self._wait(model, float(options["wait"]))  # type: ignore[arg-type]
        if model.status == ModelStatus.REFUSED:
            raise CommandError(f"{model.name}: refused: {model.error}")
        if model.status == ModelStatus.PENDING and options["wait"]:
            raise CommandError(
                f"{model.name}: registered, but no answer after {options['wait']} s: is a worker on "
                f"gpu.{model.pool} running? (the Models page shows its answer when it comes)"
            )
        if model.status == ModelStatus.PENDING:
            self.stdout.write(
                f"registered {model.name}: pending; a worker on gpu.{model.pool} inspects it "
                "(the Models page shows its answer; --wait SECONDS waits for it)"
            )
            return
        self.stdout.write(
            f"{model.name}: ready: {model.architecture}, {model.params_label} parameters ({model.params}), "
            f"vocabulary {model.vocab_size}, context {model.context_length}, on {model.inspected_by} "
            f"at {model.resolved_path}"
        )

    @staticmethod
    def _wait(model: RegisteredModel, seconds: float) -> RegisteredModel:
        deadline = time.monotonic() + seconds
        while True:
            model.refresh_from_db()
            if model.status != ModelStatus.PENDING or time.monotonic() >= deadline:
                return model
            time.sleep(POLL_S)
