from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.accounts.models import Team
from datasets_app.models import Dataset
from datasets_app.services import DatasetMoveError, dataset_move


class Command(BaseCommand):
    help = "Give a dataset (all its versions) to another team, or to the shared area every team reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", type=int, required=True, help="the dataset's id (in its page's URL)")
        owner = parser.add_mutually_exclusive_group(required=True)
        owner.add_argument("--team", help="the name of the team that will own it")
        owner.add_argument("--shared", action="store_true", help="the shared read-only area")

    def handle(self, *args: object, **options: object) -> None:
        team = None
        if not options["shared"]:
            team = Team.objects.filter(name=str(options["team"])).first()
            if team is None:
                raise CommandError(f"no team named {options['team']!r}")
        dataset_id = int(str(options["dataset"]))
        if not Dataset.objects.filter(pk=dataset_id).exists():
            raise CommandError(f"no dataset {dataset_id}")
        try:
            dataset = dataset_move(dataset_id=dataset_id, team=team)
        except DatasetMoveError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{dataset.name} (#{dataset.pk}) now belongs to {team.name if team else 'the shared area'}"
        )
