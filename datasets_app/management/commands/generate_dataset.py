import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from datasets_app.generation import FAMILIES, OpenAITeacher, generate


class Command(BaseCommand):
    help = "Write a procedural synthetic dataset in Triad's JSONL format (deterministic per --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--families", default=",".join(FAMILIES), help=f"comma-separated: {', '.join(FAMILIES)}"
        )
        parser.add_argument("--n", type=int, required=True, help="how many problems")
        parser.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--teacher-url", default="", help="an OpenAI-compatible endpoint to reword prompts"
        )
        parser.add_argument("--teacher-model", default="")

    def handle(self, *args: object, **options: object) -> None:
        families = [f.strip() for f in str(options["families"]).split(",") if f.strip()]
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown or not families:
            raise CommandError(f"unknown families {unknown}; expected some of {', '.join(FAMILIES)}")
        n = options["n"]
        assert isinstance(n, int)
        if n < 1:
            raise CommandError("--n must be at least 1")
        teacher = (
            OpenAITeacher(base_url=str(options["teacher_url"]), model=str(options["teacher_model"]))
            if options["teacher_url"]
            else None
        )
        out = options["out"]
        assert isinstance(out, Path)
        seed = options["seed"]
        assert isinstance(seed, int)
        with out.open("w", encoding="utf-8") as f:
            for record in generate(families=families, n=n, seed=seed, teacher=teacher):
                f.write(json.dumps(record) + "\n")
        self.stdout.write(f"wrote {n} problems ({', '.join(families)}, seed {seed}) to {out}")
