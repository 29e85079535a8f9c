"""throughput/tokens_total: the completion tokens generated since the run began, the charts' "tokens"
x axis. It must only grow with the step, carrying over what came before (a resume passes it in)."""

from workers.spec import Metric
from workers.trainer.metrics import LocalStats, merge_metrics


def test_tokens_total_adds_every_ranks_completion_tokens_to_the_count_before():
    a = LocalStats(lengths=[4, 8], n_samples=2)
    b = LocalStats(lengths=[3], n_samples=1)

    first = merge_metrics([a, b], lr=1e-3, grad_norm=0.0, step_s=1.0)
    second = merge_metrics(
        [a, b], lr=1e-3, grad_norm=0.0, step_s=1.0, tokens_before=first[Metric.TOKENS_TOTAL]
    )

    assert first[Metric.TOKENS_TOTAL] == 15.0
    assert second[Metric.TOKENS_TOTAL] == 30.0


def test_a_step_that_generated_nothing_keeps_the_count():
    assert (
        merge_metrics([LocalStats()], lr=0.0, grad_norm=0.0, step_s=1.0, tokens_before=42.0)[
            Metric.TOKENS_TOTAL
        ]
        == 42.0
    )
