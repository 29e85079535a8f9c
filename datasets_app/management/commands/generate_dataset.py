import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from datasets_app.generation import FAMILIES, generate
from datasets_app.teacher import Teacher, TeacherConfig, TeacherError
from datasets_app.teacher_prompts import reword_messages


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
            "--teacher-url",
            default="",
            help="an OpenAI-compatible endpoint's base URL, with its /v1 (http://host:8000/v1), to reword "
            "each docstring",
        )
        parser.add_argument("--teacher-model", default="")
        parser.add_argument(
            "--teacher-key-env",
            default="OPENAI_API_KEY",
            help="the environment variable holding the endpoint's API key (none: no key)",
        )
        parser.add_argument("--teacher-timeout", type=float, default=60.0, help="seconds per request")

    def handle(self, *args: object, **options: object) -> None:
        families = [f.strip() for f in str(options["families"]).split(",") if f.strip()]
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown or not families:
            raise CommandError(f"unknown families {unknown}; expected some of {', '.join(FAMILIES)}")
        n = options["n"]
        assert isinstance(n, int)
        if n < 1:
            raise CommandError("--n must be at least 1")
        teacher = None
        if options["teacher_url"]:
            if not options["teacher_model"]:
                raise CommandError("--teacher-model is required with --teacher-url")
            teacher = Teacher(
                TeacherConfig(
                    base_url=str(options["teacher_url"]),
                    model=str(options["teacher_model"]),
                    api_key=os.environ.get(str(options["teacher_key_env"]), ""),
                    timeout_s=float(str(options["teacher_timeout"])),
                )
            )

        def reword(text: str) -> str:
            assert teacher is not None
            reply = teacher.ask(
                reword_messages(text), temperature=0.7, max_tokens=200, seed=None, json_mode=False
            )
            return reply.text

        out = options["out"]
        assert isinstance(out, Path)
        seed = options["seed"]
        assert isinstance(seed, int)
        records = generate(families=families, n=n, seed=seed, reword=reword if teacher else None)
        try:
            lines = [json.dumps(record) + "\n" for record in records]  # all or nothing: no half-written file
        except TeacherError as exc:
            raise CommandError(f"the teacher failed: {exc}") from exc
        finally:
            if teacher is not None:
                teacher.close()
        out.write_text("".join(lines), encoding="utf-8")
        self.stdout.write(f"wrote {n} problems ({', '.join(families)}, seed {seed}) to {out}")
