from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.accounts.models import DEFAULT_TEAM, Team
from controlplane.management.users import command_user
from datasets_app.services import DatasetImportError, dataset_import


class Command(BaseCommand):
    help = "Import a HumanEval-format JSONL(.gz) file as a new version of a team's (or a shared) dataset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--user", default=None, help="username recorded as the uploader (default: first superuser)"
        )
        owner = parser.add_mutually_exclusive_group()
        owner.add_argument(
            "--team", default=DEFAULT_TEAM, help=f"the team that owns the dataset (default: {DEFAULT_TEAM})"
        )
        owner.add_argument(
            "--shared", action="store_true", help="the shared read-only area every team reads (site admins)"
        )

    def handle(self, *args: object, **options: object) -> None:
        path = options["file"]
        assert isinstance(path, Path)
        user = command_user(options["user"])
        shared = bool(options["shared"])
        team = None
        if not shared:
            name = str(options["team"])
            team = Team.objects.filter(name=name).first()
            if team is None and name == DEFAULT_TEAM:
                team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM)
            if team is None:
                raise CommandError(f"no team named {name!r}")
        try:
            with path.open("rb") as fileobj:
                outcome = dataset_import(
                    user=user,
                    name=str(options["name"]),
                    fileobj=fileobj,
                    filename=path.name,
                    team=team,
                    shared=shared,
                )
        except PermissionDenied as exc:
            raise CommandError(f"{user.get_username()}: {exc}") from None
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        except DatasetImportError as exc:
            raise CommandError(
                f"{path}: refused, nothing imported:\n" + "\n".join(f"  {e}" for e in exc.errors)
            ) from None
        version = outcome.version
        verb = "imported" if outcome.created else "identical content already imported as"
        self.stdout.write(f"{verb} {version} ({version.problem_count} problems, sha256 {version.short_hash})")
        if outcome.created and version.verify_error:  # kept, but nothing will verify it until queued again
            raise CommandError(f'{version}: {version.verify_error} (the "Verify again" button on its page)')
