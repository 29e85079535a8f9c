"""Settings this app reads (see docs/datasets.md and .env.example)."""

from django.conf import settings


def sandbox_queue() -> str:
    """The Celery queue verification chunks go to."""
    return str(settings.TRIAD_SANDBOX_QUEUE)


def verify_chunk_size() -> int:
    return int(settings.TRIAD_VERIFY_CHUNK)


def verify_timeout_s() -> float:
    return float(settings.TRIAD_VERIFY_TIMEOUT_S)


def repo_verify_chunk_size() -> int:
    """Repository tasks per verification task: each runs its tests several times in a workspace."""
    return int(settings.TRIAD_REPO_VERIFY_CHUNK)


def repo_verify_timeout_s() -> float:
    """The time limit of one run of a repository task's tests during verification."""
    return float(settings.TRIAD_REPO_VERIFY_TIMEOUT_S)


def verify_sandbox_mode() -> str:
    """ "warm" forks each item from a prepared sandbox where the sandbox can (else it runs cold)."""
    return str(settings.TRIAD_VERIFY_SANDBOX_MODE)


def gate_min_mutation_score() -> float:
    """The generation gate's weak_tests threshold (the share of the reference's mutants killed)."""
    return float(settings.TRIAD_GATE_MIN_MUTATION_SCORE)


def diversity_sample() -> int:
    return int(settings.TRIAD_DIVERSITY_SAMPLE)


def diversity_max_drop() -> float:
    return float(settings.TRIAD_DIVERSITY_MAX_DROP)


def diversity_max_near_dup() -> float:
    return float(settings.TRIAD_DIVERSITY_MAX_NEAR_DUP)
