"""Celery tasks of review: the compare matrix runs on the sandbox queue, never in a web process, and with
no database (its message carries the programs and tests); its rows are stored by the control queue."""

from typing import Any

from celery import shared_task


@shared_task(
    name="review.compare_matrix", acks_late=True, ignore_result=True, soft_time_limit=540, time_limit=600
)
def review_compare_matrix_task(matrix_id: int, programs: list[str], tests: str, entry_point: str) -> int:
    """Sandbox queue, no database: the compare page's test-by-test matrix, run here and sent to the
    control queue, which stores it in its row (the page polls the row). Returns the rows computed."""
    from django.conf import settings

    from runs.review.matrix import compare_matrix_run

    outcome = compare_matrix_run(programs=programs, tests=tests, entry_point=entry_point)
    review_compare_matrix_record_task.apply_async(
        args=(matrix_id, outcome), queue=settings.TRIAD_CONTROL_QUEUE
    )
    return len(outcome["rows"])


@shared_task(name="review.compare_matrix_record", acks_late=True, ignore_result=True)
def review_compare_matrix_record_task(matrix_id: int, outcome: dict[str, Any]) -> bool:
    """Control queue: a matrix's rows (or its error) stored. Idempotent: a done matrix is kept."""
    from runs.review.matrix import compare_matrix_record

    return compare_matrix_record(matrix_id=matrix_id, outcome=outcome)
