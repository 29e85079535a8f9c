"""`make demo` refuses up front, saying what to install, where the sandbox cannot isolate code."""

import pytest
from django.core.management import CommandError, call_command


def test_the_demo_refuses_to_start_without_a_working_sandbox_and_says_what_to_install(bwrap_missing):
    with pytest.raises(CommandError) as refused:
        call_command("demo", "--no-run")

    message = str(refused.value)
    assert message.startswith("the demo needs a working sandbox")
    assert "apt-get install bubblewrap" in message
