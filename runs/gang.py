"""Gang claims: a run with `nodes: N` starts when N nodes of its pool each hold a claim on its current
attempt. Node ranks go by order of arrival; the Nth claim forms the gang and moves the run `queued` →
`starting`. A single-node run is a gang of one: its first claim forms it at once.

Partial gangs cannot deadlock the pool: only one run of a pool gathers nodes at a time (a node offered
another run meanwhile is told to retry later), and a claim not polled for TRIAD_GANG_CLAIM_TTL_S while its
gang gathers is dropped (its launcher gave up or died). The contract with the nodes: docs/runs.md, "Gangs".
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from runs.models import TERMINAL_STATUSES, Run, RunAttempt, RunClaim, RunStatus
from runs.transitions import transition

MAX_NODES = 64  # workers.spec RunConfig.nodes' upper bound


@dataclass(frozen=True)
class GangClaimResult:
    claimed: bool  # this key holds a claim on the attempt (now, or already: a poll or a retried request)
    desired_state: str
    gang: dict[str, Any] | None = None  # the gang as this member sees it (claimed only)
    error: str = ""  # why not (refused only)
    retry: bool = False  # refused for now: another gang is gathering, or its ranks per node differ


@dataclass(frozen=True)
class GangReleaseResult:
    released: bool  # a claim of this key was dropped
    desired_state: str
    formed: bool = False  # refused: the gang formed, the run started on its members


@dataclass(frozen=True)
class NodeOffer:
    """What a node offers the gang, as its launcher said it in the claim."""

    node: str
    address: str = ""
    port: int | None = None
    ranks: int = 1
    devices: list[int] = field(default_factory=list)


def nodes_needed(config: object) -> int:
    """The run's N, read defensively: a config stored before `nodes` existed, or a bad value, is 1."""
    value = config.get("nodes", 1) if isinstance(config, dict) else 1
    if isinstance(value, bool) or not isinstance(value, int):
        return 1
    return min(max(value, 1), MAX_NODES)


def claim_node(*, claim: str, provenance: dict[str, Any] | None) -> str:
    """The node of an old launcher's claim (it names none): its provenance's host, else the part of its
    claim key after "@" (workers.launcher.claim_key)."""
    hostname = provenance.get("hostname") if provenance else None
    node = hostname if isinstance(hostname, str) and hostname else claim.rpartition("@")[2]
    return node[:200]


def claim_ranks(*, provenance: dict[str, Any] | None) -> int:
    """The ranks an old launcher starts (it sends none): its provenance's procs per node, else 1."""
    resources = provenance.get("resources") if isinstance(provenance, dict) else None
    procs = resources.get("procs_per_node") if isinstance(resources, dict) else None
    return procs if isinstance(procs, int) and not isinstance(procs, bool) and procs >= 1 else 1


def gang_claim(
    *,
    run_id: int,
    attempt: int,
    claim: str,
    node: str = "",
    address: str = "",
    port: int | None = None,
    ranks: int | None = None,
    devices: list[int] | None = None,
    provenance: dict[str, Any] | None = None,
) -> GangClaimResult:
    """A node claims its place in the run's gang for `attempt`, or polls it (the same key again refreshes
    its claim and answers the gang as it stands). Refused: another attempt, a run that moved on, a second
    claim of one node, a full gang; for now (`retry`): another run of the pool gathering, ranks per node
    unlike the first member's. Raises Run.DoesNotExist for no such run."""
    offer = NodeOffer(
        node=node or claim_node(claim=claim, provenance=provenance),
        address=address,
        port=port,
        ranks=ranks if ranks is not None else claim_ranks(provenance=provenance),
        devices=list(devices or []),
    )
    now = timezone.now()
    with transaction.atomic():
        run, pool_queued = _pool_lock(run_id=run_id)
        _claims_drop_stale(pool=run.pool, now=now)
        members = list(RunClaim.objects.filter(run_id=run_id, attempt=attempt).order_by("node_rank"))
        if run.external:
            return _refused(
                run, "an external run: its own trainer reports to it, no node of Triad's starts it"
            )
        if run.attempt != attempt:
            return _refused(run, f"run {run_id} is on attempt {run.attempt}, not {attempt}")
        held = next((c for c in members if c.key == claim), None)
        if held is not None and run.status not in TERMINAL_STATUSES:
            RunClaim.objects.filter(pk=held.pk).update(last_seen_at=now)
            return GangClaimResult(True, run.status, _gang_view(run, members, held))
        if held is None and run.claimed_by == claim and run.status not in TERMINAL_STATUSES:
            # Claimed before claims were kept per node (no RunClaim): still this key's.
            return GangClaimResult(True, run.status, _gang_view(run, members, None))
        if run.status != RunStatus.QUEUED:
            return _refused(
                run, f"attempt {attempt} is not this launcher's to start (the run is {run.status})"
            )
        size = nodes_needed(run.config)
        if same_node := next((c for c in members if c.node == offer.node), None):
            return _refused(
                run,
                f"node {offer.node} already holds node rank {same_node.node_rank} of attempt {attempt} "
                "(a redelivered start message on the same node)",
            )
        if len(members) >= size:
            return _refused(run, f"run {run_id} already has its {size} nodes")
        if gathering := _gathering_elsewhere(run_id=run_id, queued=pool_queued):
            other, claimed, needed = gathering
            return _refused(
                run, f"run #{other} is gathering its nodes ({claimed} of {needed} claimed)", retry=True
            )
        if members and members[0].ranks != offer.ranks:
            return _refused(
                run,
                f"node {offer.node} would start {offer.ranks} ranks, node rank 0 ({members[0].node}) starts "
                f"{members[0].ranks}: ranks per node differ",
                retry=True,
            )
        mine = RunClaim.objects.create(
            run_id=run_id,
            attempt=attempt,
            node=offer.node,
            key=claim,
            node_rank=len(members),
            address=offer.address,
            port=offer.port,
            ranks=offer.ranks,
            devices=offer.devices,
            provenance=provenance,
            claimed_at=now,
            last_seen_at=now,
        )
        members.append(mine)
        if len(members) == size:
            _gang_start(run=run, members=members, now=now)
        run.refresh_from_db(fields=["status"])
        return GangClaimResult(True, run.status, _gang_view(run, members, mine))


def gang_release(*, run_id: int, attempt: int, claim: str) -> GangReleaseResult:
    """A node gives its claim back before the gang formed (it waited TRIAD_GANG_WAIT_S, or stops): the
    remaining claims close the gap in their ranks (0..k-1, in arrival order). A formed gang's claims stay:
    the run started on them. A key that holds no claim releases nothing, which is no error."""
    with transaction.atomic():
        run = Run.objects.select_for_update().only("pk", "status", "attempt", "config").get(pk=run_id)
        claims = RunClaim.objects.filter(run_id=run_id, attempt=attempt)
        mine = claims.filter(key=claim).first()
        if mine is None or run.attempt != attempt:
            return GangReleaseResult(False, run.status)  # an earlier attempt's claims are its record
        if run.status != RunStatus.QUEUED and claims.count() >= nodes_needed(run.config):
            return GangReleaseResult(False, run.status, formed=True)
        mine.delete()
        _claims_rerank(run_id=run_id, attempt=attempt)
    return GangReleaseResult(True, run.status)


def _pool_lock(*, run_id: int) -> tuple[Run, list[Run]]:
    """Lock the run and every queued run of its pool, in id order (two claims of one pool never lock in
    opposite orders): gathering is decided one claim at a time per pool, so two gangs can never both
    think the pool was theirs to gather."""
    pool = Run.objects.filter(pk=run_id).values_list("pool", flat=True).first()
    if pool is None:
        raise Run.DoesNotExist(f"run {run_id}: no such run")
    locked = list(
        Run.objects.select_for_update()
        .filter(Q(pk=run_id) | Q(pool=pool, status=RunStatus.QUEUED, external=False))
        .only("pk", "status", "attempt", "config", "pool", "claimed_by", "external")
        .order_by("pk")
    )
    run = next(r for r in locked if r.pk == run_id)
    return run, [r for r in locked if r.pk != run_id and r.status == RunStatus.QUEUED]


def _claims_drop_stale(*, pool: str, now: dt.datetime) -> None:
    """Drop the claims of the pool's gathering runs that were not polled within the TTL (their launcher
    gave up or died), and close the gaps in the ranks of what remains."""
    cutoff = now - dt.timedelta(seconds=settings.TRIAD_GANG_CLAIM_TTL_S)
    stale = RunClaim.objects.filter(
        run__pool=pool, run__status=RunStatus.QUEUED, attempt=F("run__attempt"), last_seen_at__lt=cutoff
    )
    affected = set(stale.values_list("run_id", "attempt"))
    if not affected:
        return
    RunClaim.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    for run_id, attempt in sorted(affected):
        _claims_rerank(run_id=run_id, attempt=attempt)


def _claims_rerank(*, run_id: int, attempt: int) -> None:
    """Ranks 0..k-1 in arrival order again. In ascending order each claim moves down into a free rank,
    so the (run, attempt, node_rank) constraint holds after every single UPDATE."""
    claims = RunClaim.objects.filter(run_id=run_id, attempt=attempt).order_by("node_rank")
    for rank, (pk, held) in enumerate(list(claims.values_list("pk", "node_rank"))):
        if held != rank:
            RunClaim.objects.filter(pk=pk).update(node_rank=rank)


def _gathering_elsewhere(*, run_id: int, queued: list[Run]) -> tuple[int, int, int] | None:
    """(run id, claims held, nodes needed) of another queued run of the pool that holds claims on its
    current attempt but not all it needs yet; None when none does. Stale claims are gone by now."""
    others = {r.pk: r for r in queued if r.pk != run_id}
    if not others:
        return None
    held = (
        RunClaim.objects.filter(run_id__in=others, attempt=F("run__attempt"))
        .values_list("run_id")
        .annotate(n=Count("pk"))
        .order_by("run_id")
    )
    for other, claimed in held:
        needed = nodes_needed(others[other].config)
        if 0 < claimed < needed:
            return other, claimed, needed
    return None


def _gang_start(*, run: Run, members: list[RunClaim], now: dt.datetime) -> None:
    """The gang is complete: the run starts (`queued` → `starting`, held by rank 0's key) and its attempt
    records who runs it: rank 0's key, node and provenance, and every member in rank order."""
    head = members[0]
    if len(members) == 1:
        message = f"attempt {head.attempt} claimed by {head.key}"
    else:
        message = f"attempt {head.attempt}: {len(members)} nodes claimed it: " + ", ".join(
            f"{c.node} (rank {c.node_rank})" for c in members
        )
    transition(run.pk, RunStatus.STARTING, message, when=Q(attempt=head.attempt), claimed_by=head.key)
    RunAttempt.objects.update_or_create(
        run_id=run.pk,
        attempt=head.attempt,
        defaults={
            "claimed_by": head.key,
            "node": head.node,
            "claimed_at": now,
            "provenance": head.provenance,
            "nodes": [
                {"node": c.node, "node_rank": c.node_rank, "address": c.address, "ranks": c.ranks}
                for c in members
            ],
        },
    )


def _gang_view(run: Run, members: list[RunClaim], mine: RunClaim | None) -> dict[str, Any]:
    """The gang as the claim's answer shows it: every member so far, in rank order, and where rank 0
    listens (the master of the `deepspeed` launchers)."""
    size = nodes_needed(run.config)
    head = members[0] if members else None
    return {
        "size": size,
        "formed": len(members) >= size and run.status != RunStatus.QUEUED,
        "node_rank": mine.node_rank if mine is not None else 0,
        "claimed": len(members),
        "members": [
            {
                "node_rank": c.node_rank,
                "node": c.node,
                "address": c.address,
                "port": c.port,
                "ranks": c.ranks,
                "devices": c.devices,
            }
            for c in members
        ],
        "master_addr": head.address if head else "",
        "master_port": head.port if head else None,
    }


def _refused(run: Run, message: str, *, retry: bool = False) -> GangClaimResult:
    return GangClaimResult(False, run.status, error=f"run {run.pk}: {message}", retry=retry)
