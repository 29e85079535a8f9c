"""What a run needs of a GPU and what a pool's nodes have: the memory estimate per GPU shown at launch, and
the launch refusals it and the nodes' announcements give (docs/runs.md, "Resources").

Plain Python over plain dataclasses, no Django: the arithmetic is tested against hand computations, and
runs/pools.py reads the nodes and the model from the database into these.

Sizes are in GB as the nodes announce them: nvidia-smi's MiB / 1024, that is GiB (an "80 GB" A100 says
80.0), so an estimate and a node's memory compare in one unit.
"""

from dataclasses import dataclass

from workers.spec import RunConfig, keeps_reference

GIB = 2**30

# Bytes per parameter for AdamW, (weights, gradients, optimizer states), after the ZeRO paper's accounting
# (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models", SC 2020,
# §3.1): mixed precision keeps 2Ψ 16-bit weights + 2Ψ 16-bit gradients + KΨ optimizer states with K = 12
# (an fp32 master copy of the weights, momentum and variance: 4 + 4 + 4). In fp32 the weights are their
# own master copy: 4Ψ + 4Ψ + 8Ψ (momentum, variance).
BYTES_PER_PARAM: dict[str, tuple[int, int, int]] = {"fp32": (4, 4, 8), "bf16": (2, 2, 12), "fp16": (2, 2, 12)}

# LoRA adapts the attention and MLP linears of each layer: q, k, v, o, gate, up, down on a Llama-like
# model (what peft targets with "all-linear"). Each is counted as hidden→hidden, so an adapter of rank r
# has r × 2 × hidden parameters (A: hidden × r, B: r × hidden). Llama's MLP linears are wider (the
# intermediate size, about 2.7 × hidden) and grouped-query k, v narrower: the adapters' count is about
# three quarters of the real one. They are a few per mille of the model, so the total hardly moves.
LORA_LINEARS_PER_LAYER = 7

COMPUTE_CAPABILITY_BF16 = (8, 0)  # Ampere: the first GPUs with bf16 tensor cores


@dataclass(frozen=True)
class ModelSize:
    """The run's model as the estimate sees it."""

    name: str  # for messages: a registered model's name, or "the built-in tiny model"
    params: int | None  # None: the node that inspected it could not count them
    hidden_size: int | None = None
    num_layers: int | None = None
    huggingface: bool = True  # False: the built-in tiny model (no LoRA: peft adapts Hugging Face models)


def tiny_model_params(*, vocab_size: int, d_model: int, n_layers: int, max_len: int) -> int:
    """workers/trainer/model.py's TinyCausalLM: token and position embeddings (the output head is tied
    to the token embedding), per block two LayerNorms (weight and bias), qkv d→3d, proj d→d and the MLP
    d→4d→d (all with bias), then the final LayerNorm."""
    d = d_model
    block = 2 * (2 * d) + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    return vocab_size * d + max_len * d + n_layers * block + 2 * d


def lora_params(*, rank: int, hidden_size: int, num_layers: int) -> int:
    """The trainable parameters of rank-`rank` adapters (see LORA_LINEARS_PER_LAYER)."""
    return rank * 2 * hidden_size * LORA_LINEARS_PER_LAYER * num_layers


def gb(n_bytes: float) -> float:
    return n_bytes / GIB


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU of the model's states: what DeepSpeed keeps for training. Activations (less with
    gradient checkpointing, growing with the batch and the sequence), the rollouts' KV cache and the CUDA
    context are not counted: a run that fits this estimate may still run out of memory."""

    weights: int
    grads: int
    optimizer: int
    reference: int
    world_size: int
    trainable: int  # the parameters that get gradients: all of them, or the LoRA adapters'
    lora_unknown: bool = False  # LoRA on a model whose hidden size or layer count was not read

    @property
    def total(self) -> int:
        return self.weights + self.grads + self.optimizer + self.reference

    @property
    def _unit(self) -> tuple[int, str]:
        """GB, or MB for a model too small to show in GB (the tiny one: a few MB)."""
        return (GIB, "GB") if self.total >= GIB // 10 else (2**20, "MB")

    @property
    def total_label(self) -> str:
        """The total as the launch page says it: ~31.2 GB."""
        size, unit = self._unit
        return f"~{self.total / size:.1f} {unit}"

    def breakdown(self) -> str:
        """Each part in the unit of the total: weights 14.0, grads 14.0, optimizer 3.1."""
        size, _ = self._unit
        parts = [("weights", self.weights), ("grads", self.grads), ("optimizer", self.optimizer)]
        if self.reference:
            parts.append(("reference", self.reference))
        return ", ".join(f"{name} {n_bytes / size:.1f}" for name, n_bytes in parts)

    def summary(self) -> str:
        """As a refusal says it: ~31.2 GB per GPU (weights 14.0, grads 14.0, optimizer 3.1)."""
        return f"{self.total_label} per GPU ({self.breakdown()})"


def memory_estimate(
    *,
    params: int,
    precision: str,
    zero_stage: int,
    world_size: int,
    lora_rank: int = 0,
    hidden_size: int | None = None,
    num_layers: int | None = None,
    reference: bool = False,
) -> MemoryEstimate:
    """Per GPU, over `world_size` data-parallel ranks: ZeRO-1 shards the optimizer states, ZeRO-2 the
    gradients too, ZeRO-3 the weights too (each ÷ world size); stage 0 keeps every state on every rank.

    With LoRA the base weights are frozen in the training precision (sharded by ZeRO-3 like any weight)
    and only the adapters have gradients and optimizer states. With `reference` (β > 0, or the KL monitor:
    workers.spec.keeps_reference) the policy as RL started is a full copy of the weights (16-bit under
    bf16/fp16, else fp32), on every rank, never sharded."""
    weight_b, grad_b, opt_b = BYTES_PER_PARAM[precision]
    world = max(1, world_size)
    weight_div = world if zero_stage >= 3 else 1
    grad_div = world if zero_stage >= 2 else 1
    opt_div = world if zero_stage >= 1 else 1
    lora_unknown = False
    if lora_rank > 0:
        if hidden_size and num_layers:
            trainable = lora_params(rank=lora_rank, hidden_size=hidden_size, num_layers=num_layers)
        else:
            trainable, lora_unknown = 0, True
        weights = (params + trainable) * weight_b
    else:
        trainable = params
        weights = params * weight_b
    return MemoryEstimate(
        weights=weights // weight_div,
        grads=trainable * grad_b // grad_div,
        optimizer=trainable * opt_b // opt_div,
        reference=params * weight_b if reference else 0,
        world_size=world,
        trainable=trainable,
        lora_unknown=lora_unknown,
    )


@dataclass(frozen=True)
class NodeResources:
    """A node as it announced itself (runs.models.Node)."""

    name: str
    gpu_type: str
    gpu_count: int
    gpu_memory_gb: float | None = None  # per GPU
    compute_capability: str = ""  # "8.0"; "" on a CPU node or when unknown
    cpu_count: int | None = None

    def describe(self) -> str:
        """What it has, as templates/runs/_node_resources.html shows it: 8 × A100 80 GB."""
        if not self.gpu_count:
            return "CPU only"
        memory = f" {self.gpu_memory_gb:g} GB" if self.gpu_memory_gb is not None else ""
        return f"{self.gpu_count} × {self.gpu_type}{memory}"

    def capability(self) -> tuple[int, int] | None:
        major, _, minor = self.compute_capability.partition(".")
        if not (major.isdigit() and (minor.isdigit() or not minor)):
            return None
        return int(major), int(minor or 0)


@dataclass(frozen=True)
class Pool:
    name: str
    nodes: tuple[NodeResources, ...] = ()

    @property
    def gpu_nodes(self) -> tuple[NodeResources, ...]:
        return tuple(node for node in self.nodes if node.gpu_count > 0)

    def label(self) -> str:
        """The pool picker's option: a100 — 2 nodes, 8 × A100 80 GB."""
        if not self.nodes:
            return f"{self.name} — no node registered yet (the run waits for one)"
        count = f"{len(self.nodes)} node{'s' if len(self.nodes) != 1 else ''}"
        kinds: dict[str, int] = {}
        for node in self.nodes:
            kinds[node.describe()] = kinds.get(node.describe(), 0) + 1
        if len(kinds) == 1:
            return f"{self.name} — {count}, {next(iter(kinds))}"
        return f"{self.name} — {count}: " + ", ".join(f"{kind} ({n})" for kind, n in kinds.items())


@dataclass(frozen=True)
class Refusal:
    message: str
    field: str  # the launch form's field it is about ("__all__": the whole form)


def world_size_on(node: NodeResources, *, gpus_per_node: int, nodes: int = 1) -> int:
    """The ranks a run trains on: its GPUs per node, or (0) all the node has, on each of its `nodes`
    (a gang's nodes are taken alike: each must fit the run, so each is counted as this one)."""
    return (gpus_per_node or node.gpu_count) * nodes


def node_memory_estimate(*, config: RunConfig, size: ModelSize, node: NodeResources) -> MemoryEstimate | None:
    """The run's estimate on one node of its pool (None: the model's size is not known)."""
    if size.params is None:
        return None
    return memory_estimate(
        params=size.params,
        precision=config.precision,
        zero_stage=config.zero_stage,
        world_size=world_size_on(node, gpus_per_node=config.gpus_per_node, nodes=config.nodes),
        lora_rank=config.lora_rank,
        hidden_size=size.hidden_size,
        num_layers=size.num_layers,
        reference=keeps_reference(config, size.params),
    )


def launch_refusal(*, config: RunConfig, size: ModelSize, pool: Pool) -> Refusal | None:
    """Why this run cannot train on this pool, with the numbers; None if nothing stands in the way.

    Any GPU node of the pool may take the run from its queue, so it must fit the smallest of them. A
    pool with no registered node refuses nothing but LoRA on the tiny model (the run waits for a node),
    nor does a pool of CPU nodes check GPUs."""
    if config.lora_rank > 0 and not size.huggingface:
        return Refusal(
            f"LoRA needs a Hugging Face model: {size.name} trains every weight "
            "(set LoRA rank to 0, or pick a registered model)",
            field="lora_rank",
        )
    if config.rollout == "vllm" and (not size.huggingface or config.lora_rank > 0):
        # The trainer refuses these at start-up (workers/trainer/engine.py): say so before queueing.
        what = f"{size.name} is not a Hugging Face model" if not size.huggingface else "LoRA is not supported"
        return Refusal(
            f"rollout: vllm needs a Hugging Face model trained without LoRA ({what}): use rollout: torch",
            field="rollout",
        )
    if pool.nodes and len(pool.nodes) < config.nodes:
        # A gang starts when `nodes` nodes of the pool claim it: with fewer registered it would wait for
        # ever. A pool with none refuses nothing: the run waits for its nodes to register.
        return Refusal(
            f"{config.nodes} nodes asked, the {pool.name} pool has {len(pool.nodes)} registered: ask for "
            f"{len(pool.nodes)} or fewer, or register more nodes in the pool",
            field="nodes",
        )
    gpu_nodes = pool.gpu_nodes
    if pool.nodes and not gpu_nodes and config.precision == "fp16":
        # DeepSpeed's CPU accelerator refuses fp16 at start-up: say so before anything is queued.
        return Refusal(
            f"fp16 needs GPUs, and the {pool.name} pool's nodes have none (DeepSpeed trains fp16 on "
            "GPUs only): use bf16 or fp32, or a GPU pool",
            field="precision",
        )
    if pool.nodes and not gpu_nodes and config.rollout == "vllm":
        return Refusal(
            f"rollout: vllm needs GPU nodes, and the {pool.name} pool's nodes have none: use rollout: torch, "
            "or a GPU pool whose nodes have vllm installed",
            field="rollout",
        )
    if not gpu_nodes:
        return None
    most = max(gpu_nodes, key=lambda node: node.gpu_count)
    if config.gpus_per_node > most.gpu_count:
        return Refusal(
            f"{config.gpus_per_node} GPUs per node asked, but the {pool.name} pool's nodes have at most "
            f"{most.gpu_count} ({most.name}: {most.describe()}): ask for {most.gpu_count} or fewer "
            "(0: all the node has)",
            field="gpus_per_node",
        )
    if config.precision == "bf16":
        for node in gpu_nodes:
            capability = node.capability()
            if capability is not None and capability < COMPUTE_CAPABILITY_BF16:
                return Refusal(
                    f"bf16 needs GPUs of compute capability 8.0 or later; node {node.name} of the "
                    f"{pool.name} pool has {node.gpu_type} (compute capability {node.compute_capability}): "
                    "use fp16 or fp32, or another pool",
                    field="precision",
                )
    return _memory_refusal(config=config, size=size, pool=pool)


def _memory_refusal(*, config: RunConfig, size: ModelSize, pool: Pool) -> Refusal | None:
    worst: tuple[float, NodeResources, MemoryEstimate] | None = None
    for node in pool.gpu_nodes:
        estimate = node_memory_estimate(config=config, size=size, node=node)
        if estimate is None or node.gpu_memory_gb is None:
            continue
        short = gb(estimate.total) - node.gpu_memory_gb
        if short > 0 and (worst is None or short > worst[0]):
            worst = (short, node, estimate)
    if worst is None:
        return None
    _, node, estimate = worst
    ranks = f"{estimate.world_size} GPU{'s' if estimate.world_size != 1 else ''}"
    return Refusal(
        f"{size.name} needs {estimate.summary()} on {ranks}, activations not counted; the "
        f"{pool.name} pool's GPUs have {node.gpu_memory_gb:g} GB ({node.name}: {node.describe()}): "
        f"{_memory_remedies(config=config, size=size)}",
        field="__all__",
    )


def _memory_remedies(*, config: RunConfig, size: ModelSize) -> str:
    remedies = []
    if config.zero_stage < 3:
        remedies.append("ZeRO-3" if config.zero_stage == 2 else f"ZeRO-{config.zero_stage + 1} to 3")
    if config.lora_rank == 0 and size.huggingface:
        remedies.append("LoRA")
    if config.precision == "fp32":
        remedies.append("bf16 or fp16")
    if size.params is not None and keeps_reference(config, size.params):
        remedies.append(
            "β 0 and kl_monitor_every 0 (no reference copy)" if config.beta > 0 else "kl_monitor_every 0"
        )
    remedies.append("more GPUs" if config.zero_stage >= 1 else "more GPUs with ZeRO")
    return "use " + ", ".join(remedies[:-1]) + (" or " if len(remedies) > 1 else "") + remedies[-1]


def shown_estimate(*, config: RunConfig, size: ModelSize, pool: Pool) -> MemoryEstimate | None:
    """The estimate the launch page shows: on the pool's GPU node with the least memory (the one it must
    fit), else over the GPUs asked for (one when 0: no node says how many it has)."""
    gpu_nodes = [node for node in pool.gpu_nodes if node.gpu_memory_gb is not None] or list(pool.gpu_nodes)
    if gpu_nodes:
        smallest = min(gpu_nodes, key=lambda node: node.gpu_memory_gb or 0.0)
        return node_memory_estimate(config=config, size=size, node=smallest)
    anywhere = NodeResources(name="", gpu_type="", gpu_count=1)
    return node_memory_estimate(config=config, size=size, node=anywhere)
