"""Settings this app reads (see docs/datasets.md and .env.example)."""

from django.conf import settings


def sandbox_queue() -> str:
    """The Celery queue verification chunks go to."""
    return str(settings.TRIAD_SANDBOX_QUEUE)


def verify_chunk_size() -> int:
    return int(settings.TRIAD_VERIFY_CHUNK)


def verify_timeout_s() -> float:
    return float(settings.TRIAD_VERIFY_TIMEOUT_S)


def verify_sandbox_mode() -> str:
    """ "warm" forks each item from a prepared sandbox where the sandbox can (else it runs cold)."""
    return str(settings.TRIAD_VERIFY_SANDBOX_MODE)


def gate_min_mutation_score() -> float:
    """The generation gate's weak_tests threshold (the share of the reference's mutants killed)."""
    return float(settings.TRIAD_GATE_MIN_MUTATION_SCORE)
