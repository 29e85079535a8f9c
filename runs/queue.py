"""The queue of each pool, as people see it: the queued runs in the order the nodes take them, what
each waits for, the pool's nodes with what they run, and how long the head has waited (docs/runs.md,
"The queue").

Read-only. The order is the broker's: a `gpu.<pool>` queue is first in, first out, and a run's start
task reached it at `Run.enqueued_at`. A run takes its `nodes` nodes (a gang: one start message each,
claimed through the control plane, runs/gang.py) and a node runs one run at a time (its worker runs
`-P solo`: one task, the launcher of one run, at a time), so a node is free when it is healthy and no
run holds it: neither a started run (assigned to it, or with a claim of its current attempt there) nor
a queued gang gathering its nodes (a fresh claim of its current attempt there). One gang gathers per
pool at a time (docs/runs.md): the others wait for it.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from controlplane.accounts.selectors import team_ids_for
from runs.models import Node, Run, RunAttempt, RunClaim, RunStatus
from runs.nodes import node_is_healthy
from runs.spend.selectors import BudgetState, team_budget_state, user_budget_state
from workers.spec import config_from_stored

# The runs that hold a node: claimed by a launcher on it, and not yet ended.
HOLDING_STATUSES = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING)


def nodes_needed(run: Run) -> int:
    """How many nodes of its pool the run waits for: its `nodes` setting (a gang when more than one)."""
    return config_from_stored(run.config).nodes


def _fresh_since(now: dt.datetime) -> dt.datetime:
    """Claims of a queued run seen before this are stale: the claim server drops them (runs/gang.py)."""
    return now - dt.timedelta(seconds=settings.TRIAD_GANG_CLAIM_TTL_S)


def _holding_claims(*, pools: Iterable[str], now: dt.datetime) -> list[RunClaim]:
    """The claims that hold a node: of a started run's current attempt, or fresh ones of a queued run's
    current attempt (a gang gathering its nodes)."""
    holding = Q(run__status__in=HOLDING_STATUSES) | Q(
        run__status=RunStatus.QUEUED, last_seen_at__gte=_fresh_since(now)
    )
    claims = RunClaim.objects.filter(holding, run__pool__in=list(pools), attempt=F("run__attempt"))
    return list(claims.select_related("run").order_by("run_id", "node_rank"))


def _node_aliases(nodes: Iterable[Node]) -> dict[str, Node]:
    """The names a claim may give a node by: its Celery node name, else its host (old launchers send the
    host, or a key "launcher-…@<host>"). A host two nodes share names neither."""
    by_name = {node.name: node for node in nodes}
    by_host: dict[str, Node | None] = {}
    for node in by_name.values():
        for host in {node.hostname, node.name.partition("@")[2]} - {""}:
            by_host[host] = node if by_host.get(host, node) is node else None
    return {**{h: n for h, n in by_host.items() if n is not None}, **by_name}


def _holders(*, nodes: list[Node], now: dt.datetime) -> dict[int, Run]:
    """The run that holds each of `nodes` (by pk): a started run assigned to it, else the run with a
    holding claim there (`_holding_claims`)."""
    holders: dict[int, Run] = {}
    started = Run.objects.filter(status__in=HOLDING_STATUSES, node__in=nodes).order_by("pk")
    for run in started:
        if run.node_id is not None:
            holders.setdefault(run.node_id, run)
    aliases = _node_aliases(nodes)
    for claim in _holding_claims(pools={node.pool for node in nodes}, now=now):
        if (held := aliases.get(claim.node)) is not None and held.pool == claim.run.pool:
            holders.setdefault(held.pk, claim.run)
    return holders


@dataclass(frozen=True)
class Gathering:
    """The queued gang of a pool whose claims are being gathered: the others wait for it."""

    run: Run
    claimed: int
    needed: int


def _gathering(*, pool: str, now: dt.datetime) -> Gathering | None:
    """The pool's queued run with fresh claims of its current attempt, fewer than it needs (the claim
    server lets one gather at a time; the oldest claim's, should two ever show)."""
    counts = (
        RunClaim.objects.filter(
            run__pool=pool,
            run__status=RunStatus.QUEUED,
            attempt=F("run__attempt"),
            last_seen_at__gte=_fresh_since(now),
        )
        .values("run_id")
        .annotate(claimed=Count("pk"), since=Min("claimed_at"))
        .order_by("since", "run_id")
    )
    for row in counts:
        run = Run.objects.select_related("team", "created_by").get(pk=row["run_id"])
        if row["claimed"] < nodes_needed(run):
            return Gathering(run=run, claimed=row["claimed"], needed=nodes_needed(run))
    return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True)
class QueueEntry:
    """A run that waits, or consecutive runs of teams the user is not in (shown without names)."""

    position: int  # 1 is the head of the queue
    waiting_since: dt.datetime | None  # None: its start task has not reached the broker yet
    run: Run | None = None  # None: runs of other teams
    hidden_count: int = 0
    reasons: list[str] = field(default_factory=list)
    nodes: int = 1  # the nodes it needs at once (a gang when more than one)

    @property
    def last_position(self) -> int:
        return self.position + max(self.hidden_count, 1) - 1


@dataclass(frozen=True)
class PoolNode:
    node: Node
    healthy: bool
    run: Run | None  # the started run that holds it, if the user may see it
    held_elsewhere: bool  # held by a run of another team: busy, not named
    # The holder's claim, while its launcher has not started the trainer ("starting").
    claim_waiting: bool = False
    # The holder is a queued gang and this node's claim waits for the rest of its nodes.
    gathering: bool = False


@dataclass(frozen=True)
class PoolQueue:
    pool: str
    entries: list[QueueEntry]
    nodes: list[PoolNode]
    length: int
    head_waiting_since: dt.datetime | None
    gathering: Gathering | None = None

    @property
    def healthy(self) -> int:
        return sum(1 for row in self.nodes if row.healthy)

    @property
    def free(self) -> int:
        return _free(self.nodes)


def _free(nodes: list[PoolNode]) -> int:
    """Healthy nodes that no started run holds."""
    return sum(1 for row in nodes if row.healthy and not (row.run or row.held_elsewhere))


# The broker's order: the runs whose start task it took, by when, then those it has not taken (yet).
QUEUE_ORDER = (F("enqueued_at").asc(nulls_last=True), "created_at", "pk")


def _queued(pool: str | None = None) -> list[Run]:
    # External runs wait for their own trainer, not for the pool's nodes (docs/external-runs.md).
    runs = Run.objects.filter(status=RunStatus.QUEUED, external=False).select_related("team", "created_by")
    if pool is not None:
        runs = runs.filter(pool=pool)
    return list(runs.order_by(*QUEUE_ORDER))


def _pool_nodes(*, pool: str, team_ids: list[int] | None, now: dt.datetime) -> list[PoolNode]:
    nodes = list(Node.objects.filter(pool=pool))
    holders = _holders(nodes=nodes, now=now)
    rows = []
    for node in nodes:
        holder = holders.get(node.pk)
        visible = holder is not None and (team_ids is None or holder.team_id in team_ids)
        rows.append(
            PoolNode(
                node=node,
                healthy=node_is_healthy(node, now=now),
                run=holder if visible else None,
                held_elsewhere=holder is not None and not visible,
                claim_waiting=holder is not None and holder.status == RunStatus.STARTING,
                gathering=holder is not None and holder.status == RunStatus.QUEUED,
            )
        )
    return rows


class _Budgets:
    """The monthly budget states a page needs, each read once (a queue holds many runs of one owner)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.users: dict[int, BudgetState | None] = {}
        self.teams: dict[int, BudgetState | None] = {}

    def spent(self, run: Run) -> list[str]:
        """A spent monthly budget does not hold a run in the queue, but stops it as soon as it starts
        (runs.spend.services): say so while it waits."""
        if run.created_by_id not in self.users:
            self.users[run.created_by_id] = user_budget_state(user_id=run.created_by_id, now=self.now)
        if run.team_id not in self.teams:
            self.teams[run.team_id] = team_budget_state(team_id=run.team_id, now=self.now)
        reasons = []
        for whose, budget in (
            (f"{run.created_by.get_username()}'s", self.users[run.created_by_id]),
            (f"team {run.team.name}'s", self.teams[run.team_id]),
        ):
            if budget is not None and budget.remaining <= 0:
                reasons.append(
                    f"{whose} monthly budget is spent (${budget.spent:.2f} of ${budget.cap:.2f}): "
                    "it stops as soon as it starts"
                )
        return reasons


def _gang_reason(run: Run, *, gathering: Gathering | None, team_ids: list[int] | None) -> str:
    """What a queued run waits for while a gang of its pool gathers its nodes."""
    if gathering is None:
        return ""
    if gathering.run.pk == run.pk:
        return f"gathering: {gathering.claimed} of {_plural(gathering.needed, 'node')} claimed"
    if team_ids is not None and gathering.run.team_id not in team_ids:
        return "waits while a run of another team gathers its nodes"
    return f"waits while run #{gathering.run.pk} gathers its nodes"


def _reasons(
    run: Run,
    *,
    nodes: list[PoolNode],
    needed_ahead: int,
    spec_fetched: set[int],
    budgets: _Budgets,
    gang: str,
) -> list[str]:
    reasons = [gang] if gang else []
    needed = nodes_needed(run)
    if not nodes:
        reasons.append(f"no node is registered in the {run.pool} pool: start a worker on gpu.{run.pool}")
    else:
        # The nodes its own gathering claims hold are its to start on.
        free = _free(nodes) + sum(1 for row in nodes if row.run is not None and row.run.pk == run.pk)
        claims = sum(1 for row in nodes if row.claim_waiting)
        silent = sum(1 for row in nodes if not row.healthy)
        need = f"needs {_plural(needed, 'node')}, {free} free"
        if claims:
            need += f" ({_plural(claims, 'node')} held by a claim whose trainer has not started)"
        if silent:
            need += f" ({silent} silent: no heartbeat)"
        if free < needed:
            reasons.append(need)
        elif free - needed_ahead < needed:
            reasons.append(f"{need}, taken first by the runs ahead")
    if run.enqueued_at is None:
        grace = settings.TRIAD_ENQUEUE_GRACE_S
        reasons.append(
            f"its start task has not reached the broker yet (failed if it does not within {grace:.0f}s)"
        )
    elif run.pk in spec_fetched and not gang.startswith("gathering"):
        reasons.append("a node took its start task and has not claimed it yet")
    reasons.extend(budgets.spent(run))
    return reasons


def _entries(
    runs: Iterable[Run],
    *,
    team_ids: list[int] | None,
    nodes: list[PoolNode],
    now: dt.datetime,
    gathering: Gathering | None = None,
) -> list[QueueEntry]:
    runs = list(runs)
    # A node that fetched the current attempt's spec took its start task: the claim comes next.
    fetched = RunAttempt.objects.filter(
        run__in=runs, attempt=F("run__attempt"), spec_served_at__isnull=False, claimed_by=""
    )
    spec_fetched = set(fetched.values_list("run_id", flat=True))
    budgets = _Budgets(now)
    entries: list[QueueEntry] = []
    # The gathering gang goes first, wherever it stands: it takes the nodes its claims do not hold yet.
    needed_ahead = gathering.needed - gathering.claimed if gathering is not None else 0
    for position, run in enumerate(runs, start=1):
        if team_ids is not None and run.team_id not in team_ids:
            last = entries[-1] if entries else None
            if last is not None and last.run is None:  # consecutive runs of other teams: one row
                entries[-1] = QueueEntry(
                    last.position, last.waiting_since, hidden_count=last.hidden_count + 1
                )
            else:
                entries.append(QueueEntry(position, run.enqueued_at, hidden_count=1))
        else:
            gathers = gathering is not None and gathering.run.pk == run.pk
            reasons = _reasons(
                run,
                nodes=nodes,
                needed_ahead=0 if gathers else needed_ahead,
                spec_fetched=spec_fetched,
                budgets=budgets,
                gang=_gang_reason(run, gathering=gathering, team_ids=team_ids),
            )
            entries.append(
                QueueEntry(position, run.enqueued_at, run=run, reasons=reasons, nodes=nodes_needed(run))
            )
        if gathering is None or gathering.run.pk != run.pk:
            needed_ahead += nodes_needed(run)
    return entries


def pool_queue(*, user: User, pool: str, now: dt.datetime | None = None) -> PoolQueue:
    """One pool's queue as `user` may see it: runs of teams they are not in count and hold their place,
    without id, name or reasons (as on the nodes page, runs.nodes.node_list)."""
    now = now or timezone.now()
    team_ids = team_ids_for(user=user)  # None: every team (a superuser)
    nodes = _pool_nodes(pool=pool, team_ids=team_ids, now=now)
    runs = _queued(pool)
    head = runs[0].enqueued_at if runs else None
    gathering = _gathering(pool=pool, now=now)
    entries = _entries(runs, team_ids=team_ids, nodes=nodes, now=now, gathering=gathering)
    return PoolQueue(
        pool=pool,
        entries=entries,
        nodes=nodes,
        length=len(runs),
        head_waiting_since=head,
        gathering=gathering,
    )


@dataclass(frozen=True)
class PoolSummary:
    pool: str
    length: int
    head_waiting_since: dt.datetime | None
    nodes: int
    healthy: int
    free: int


def pool_queue_list(*, now: dt.datetime | None = None) -> list[PoolSummary]:
    """Every pool that has a node or a queued run, with its queue length and how long its head waited.
    Counts only: they name no run, so every user sees them (as the nodes page's "busy")."""
    now = now or timezone.now()
    queued: dict[str, list[Run]] = {}
    for run in _queued():
        queued.setdefault(run.pool, []).append(run)
    every = list(Node.objects.all())
    held = set(_holders(nodes=every, now=now))
    nodes: dict[str, list[Node]] = {}
    for node in every:
        nodes.setdefault(node.pool, []).append(node)
    summaries = []
    for pool in sorted(set(queued) | set(nodes)):
        runs, members = queued.get(pool, []), nodes.get(pool, [])
        healthy = [node for node in members if node_is_healthy(node, now=now)]
        summaries.append(
            PoolSummary(
                pool=pool,
                length=len(runs),
                head_waiting_since=runs[0].enqueued_at if runs else None,
                nodes=len(members),
                healthy=len(healthy),
                free=sum(1 for node in healthy if node.pk not in held),
            )
        )
    return summaries


def run_queue_place(*, run: Run) -> tuple[int, int] | None:
    """(position, queue length) of a queued run in its pool's queue; None when it does not wait."""
    if run.status != RunStatus.QUEUED or run.external:
        return None
    ids = list(
        Run.objects.filter(status=RunStatus.QUEUED, pool=run.pool, external=False)
        .order_by(*QUEUE_ORDER)
        .values_list("pk", flat=True)
    )
    return (ids.index(run.pk) + 1, len(ids)) if run.pk in ids else None
