"""Celery tasks of review: the compare matrix runs on the sandbox queue, never in a web process."""

from celery import shared_task


@shared_task(
    name="review.compare_matrix", acks_late=True, ignore_result=True, soft_time_limit=540, time_limit=600
)
def review_compare_matrix_task(matrix_id: int) -> bool:
    """Sandbox queue: the compare page's test-by-test matrix, run here and stored in its row (the page
    polls the row). Untrusted code never runs in a web process. Idempotent: a done matrix is kept."""
    from runs.review.matrix import compare_matrix_compute

    return compare_matrix_compute(matrix_id=matrix_id)
