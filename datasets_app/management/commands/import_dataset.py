from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from datasets_app.services import DatasetImportError, dataset_import


class Command(BaseCommand):
    help = "Import a HumanEval-format JSONL(.gz) file as a new dataset version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--user", default=None, help="username recorded as the uploader (default: first superuser)"
        )

    def handle(self, *args: object, **options: object) -> None:
        path = options["file"]
        assert isinstance(path, Path)
        user_model = get_user_model()
        username = options["user"]
        user = (
            user_model.objects.filter(username=username).first()
            if username
            else user_model.objects.filter(is_superuser=True).order_by("pk").first()
        )
        if user is None:
            raise CommandError("no such user; create one with `manage.py createsuperuser` or pass --user")
        try:
            with path.open("rb") as fileobj:
                outcome = dataset_import(
                    user=user, name=str(options["name"]), fileobj=fileobj, filename=path.name
                )
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
