"""The run state machine under concurrent requests: conditional updates let exactly one win."""

import threading

import pytest
from django.db import connection

from runs.lifecycle import run_cancel, transition
from runs.models import LogLine, Run, RunStatus
from tests.factories import RunFactory


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_a_finish_moves_the_run_exactly_once():
    run = RunFactory(status=RunStatus.RUNNING)
    barrier = threading.Barrier(8)
    outcomes: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def attempt(kind: str) -> None:
        barrier.wait()
        try:
            moved = run_cancel(run_id=run.pk) if kind == "cancel" else transition(run.pk, RunStatus.SUCCEEDED)
            with lock:
                outcomes.append((kind, moved))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(k,)) for k in ["cancel", "finish"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    winners = [kind for kind, moved in outcomes if moved]
    assert len(outcomes) == 8 and len(winners) == 1
    final = Run.objects.get(pk=run.pk).status
    assert final == (RunStatus.CANCELLING if winners == ["cancel"] else RunStatus.SUCCEEDED)
    moves = LogLine.objects.filter(run=run, source="control").exclude(message="run queued")
    assert moves.count() == 1  # one move, logged once: no repeated or contradictory transitions


@pytest.mark.django_db
def test_a_second_cancel_does_not_confirm_the_first():
    """`cancelling` → `cancelled` belongs to the launcher; a repeated click must leave the run waiting."""
    run = RunFactory(status=RunStatus.RUNNING)
    assert run_cancel(run_id=run.pk) is True
    assert run_cancel(run_id=run.pk) is False
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLING
