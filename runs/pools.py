"""The pools a run may go to and what their nodes announced, and the size of a run's model: the database
side of runs/resources.py (docs/runs.md, "Resources")."""

from dataclasses import dataclass
from typing import cast

from django.conf import settings

from runs.models import Node
from runs.registry.models import RegisteredModel
from runs.resources import (
    MemoryEstimate,
    ModelSize,
    NodeResources,
    Pool,
    Refusal,
    launch_refusal,
    shown_estimate,
    tiny_model_params,
)
from runs.spec import TINY_MODEL
from workers.spec import RunConfig
from workers.trainer.tokenizer import ByteTokenizer


def _node_resources(node: Node) -> NodeResources:
    return NodeResources(
        name=node.name,
        gpu_type=node.gpu_type,
        gpu_count=node.gpu_count,
        gpu_memory_gb=node.gpu_memory_gb,
        compute_capability=node.compute_capability,
        cpu_count=node.cpu_count,
    )


def pool_list() -> list[Pool]:
    """Every pool that a registered node announced, by name; only the default pool (with no node) when
    none has: the demo and a fresh install launch before any node registers."""
    pools: dict[str, list[NodeResources]] = {}
    for node in Node.objects.order_by("pool", "name"):
        pools.setdefault(node.pool, []).append(_node_resources(node))
    if not pools:
        return [Pool(name=settings.TRIAD_DEFAULT_POOL)]
    return [Pool(name=name, nodes=tuple(nodes)) for name, nodes in pools.items()]


def pool_get(*, name: str) -> Pool:
    """The pool's registered nodes (none: the run waits for one)."""
    nodes = Node.objects.filter(pool=name).order_by("name")
    return Pool(name=name, nodes=tuple(_node_resources(node) for node in nodes))


def pool_for_run(*, pool: str, model: RegisteredModel | None) -> str:
    """Where a run goes when `pool` is left empty: its model's pool, else the default pool."""
    return pool or (model.pool if model is not None else "") or settings.TRIAD_DEFAULT_POOL


def model_pool_refusal(*, model: RegisteredModel | None, pool: str) -> Refusal | None:
    """A pool asked for that is not the model's: only that pool's nodes were seen to hold it."""
    if model is None or not pool or pool == model.pool:
        return None
    return Refusal(
        f"model {model.name} is registered on pool {model.pool}, not {pool}: only that pool's nodes "
        "were seen to hold it (register it on this pool too, under another name)",
        field="model",
    )


def model_size(*, model: RegisteredModel | None) -> ModelSize:
    """A registered model's size as its node read it; the built-in tiny model's from its shape."""
    if model is None:
        d_model, n_layers = cast(int, TINY_MODEL["d_model"]), cast(int, TINY_MODEL["n_layers"])
        params = tiny_model_params(
            vocab_size=ByteTokenizer.vocab_size,
            d_model=d_model,
            n_layers=n_layers,
            max_len=cast(int, TINY_MODEL["max_len"]),
        )
        return ModelSize(
            name="the built-in tiny model",
            params=params,
            hidden_size=d_model,
            num_layers=n_layers,
            huggingface=False,
        )
    return ModelSize(
        name=f"model {model.name}",
        params=model.params,
        hidden_size=model.hidden_size,
        num_layers=model.num_layers,
    )


@dataclass(frozen=True)
class LaunchResources:
    """What the launch page shows of a run's resources, and what run_launch refuses on."""

    pool: Pool
    size: ModelSize
    memory: MemoryEstimate | None  # None: the model's size is not known
    refusal: Refusal | None

    @property
    def on_gpus(self) -> bool:
        """False on a CPU pool: its memory is the host's, and nothing is checked against it."""
        return bool(self.pool.gpu_nodes) or not self.pool.nodes


def launch_resources(*, config: RunConfig, model: RegisteredModel | None, pool: str) -> LaunchResources:
    """The run's memory per GPU on `pool` (empty: the model's, else the default; see `pool_for_run`)
    and why it cannot go there, if it cannot: another pool than the model's, or nodes that cannot train
    it (runs/resources.py)."""
    mismatch = model_pool_refusal(model=model, pool=pool)
    found, size = pool_get(name=pool_for_run(pool=pool, model=model)), model_size(model=model)
    return LaunchResources(
        pool=found,
        size=size,
        memory=shown_estimate(config=config, size=size, pool=found),
        refusal=mismatch or launch_refusal(config=config, size=size, pool=found),
    )
