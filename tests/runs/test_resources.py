"""The memory estimate per GPU and the refusals of runs/resources.py, against hand computations of the ZeRO
paper's accounting (docs/runs.md, "Resources")."""

import pytest

from runs.resources import (
    GIB,
    ModelSize,
    NodeResources,
    Pool,
    launch_refusal,
    lora_params,
    memory_estimate,
    shown_estimate,
    tiny_model_params,
)
from workers.spec import RunConfig

B7 = 7_000_000_000


def test_7b_in_bf16_without_zero_takes_16_bytes_a_parameter():
    estimate = memory_estimate(params=B7, precision="bf16", zero_stage=0, world_size=8)

    # 2 (16-bit weights) + 2 (16-bit grads) + 12 (fp32 master, momentum, variance) on every rank.
    assert (estimate.weights, estimate.grads, estimate.optimizer) == (14 * 10**9, 14 * 10**9, 84 * 10**9)
    assert estimate.total == 112 * 10**9
    assert estimate.total_label == "~104.3 GB"  # 112e9 bytes in GiB, the unit nodes announce
    assert estimate.breakdown() == "weights 13.0, grads 13.0, optimizer 78.2"


def test_fp32_keeps_the_weights_as_their_own_master_copy():
    estimate = memory_estimate(params=B7, precision="fp32", zero_stage=0, world_size=1)

    assert (estimate.weights, estimate.grads, estimate.optimizer) == (28 * 10**9, 28 * 10**9, 56 * 10**9)


@pytest.mark.parametrize(
    ("stage", "weights", "grads", "optimizer"),
    [
        (1, 14 * 10**9, 14 * 10**9, 84 * 10**9 // 8),  # the optimizer states sharded over 8 ranks
        (2, 14 * 10**9, 14 * 10**9 // 8, 84 * 10**9 // 8),  # the gradients too
        (3, 14 * 10**9 // 8, 14 * 10**9 // 8, 84 * 10**9 // 8),  # the weights too: 112e9 / 8 in all
    ],
)
def test_each_zero_stage_shards_one_more_state_over_the_ranks(stage, weights, grads, optimizer):
    estimate = memory_estimate(params=B7, precision="bf16", zero_stage=stage, world_size=8)

    assert (estimate.weights, estimate.grads, estimate.optimizer) == (weights, grads, optimizer)


def test_lora_freezes_the_base_and_trains_seven_adapters_a_layer():
    # Llama-2-7B's shape: hidden 4096, 32 layers; rank 16 → 16 × 2 × 4096 × 7 × 32 adapter parameters.
    adapters = 16 * 2 * 4096 * 7 * 32
    assert lora_params(rank=16, hidden_size=4096, num_layers=32) == adapters == 29_360_128

    estimate = memory_estimate(
        params=B7, precision="bf16", zero_stage=0, world_size=1, lora_rank=16, hidden_size=4096, num_layers=32
    )

    assert estimate.weights == (B7 + adapters) * 2
    assert (estimate.grads, estimate.optimizer) == (adapters * 2, adapters * 12)
    assert estimate.trainable == adapters
    assert round(estimate.total / GIB, 1) == 13.5  # against 104.3 for full fine-tuning


def test_lora_on_a_model_of_unknown_shape_counts_the_base_only_and_says_so():
    estimate = memory_estimate(params=B7, precision="bf16", zero_stage=0, world_size=1, lora_rank=8)

    assert (estimate.weights, estimate.grads, estimate.optimizer) == (14 * 10**9, 0, 0)
    assert estimate.lora_unknown


@pytest.mark.parametrize(("precision", "per_param"), [("bf16", 2), ("fp16", 2), ("fp32", 4)])
def test_the_kl_reference_is_a_whole_copy_on_every_rank(precision, per_param):
    estimate = memory_estimate(params=B7, precision=precision, zero_stage=3, world_size=8, reference=True)

    assert estimate.reference == B7 * per_param  # not sharded, even by ZeRO-3
    assert "reference" in estimate.breakdown()
    assert memory_estimate(params=B7, precision=precision, zero_stage=3, world_size=8).reference == 0


def test_the_tiny_model_count_is_the_trainers_own_model():
    torch_model = pytest.importorskip("workers.trainer.model")
    from workers.trainer.tokenizer import ByteTokenizer

    shape = {"d_model": 64, "n_layers": 2, "max_len": 512}
    model = torch_model.TinyCausalLM(ByteTokenizer.vocab_size, n_heads=4, **shape)

    # parameters() lists the tied head once, as the optimizer sees it.
    counted = sum(p.numel() for p in model.parameters())
    assert tiny_model_params(vocab_size=259, **shape) == counted == 149_440


def test_a_tiny_estimate_is_shown_in_mb():
    estimate = memory_estimate(params=149_440, precision="fp32", zero_stage=0, world_size=1)

    assert estimate.total_label == "~2.3 MB"  # 149,440 × 16 bytes


# ---------------------------------------------------------------------------------------- refusals

LLAMA_7B = ModelSize(name="model llama-7b", params=B7, hidden_size=4096, num_layers=32)
TINY = ModelSize(
    name="the built-in tiny model", params=149_440, hidden_size=64, num_layers=2, huggingface=False
)


def _gpu(
    name: str, count: int, memory: float, capability: str = "8.0", gpu_type: str = "A100"
) -> NodeResources:
    return NodeResources(
        name=name, gpu_type=gpu_type, gpu_count=count, gpu_memory_gb=memory, compute_capability=capability
    )


def test_a_model_that_does_not_fit_the_smallest_gpu_is_refused_with_the_numbers():
    pool = Pool("mixed", (_gpu("big", 8, 80.0), _gpu("small", 8, 24.0, "8.6", "A10G")))
    config = RunConfig(precision="bf16", zero_stage=2, gpus_per_node=8)

    refusal = launch_refusal(config=config, size=LLAMA_7B, pool=pool)

    # 14e9 weights + 14e9 / 8 grads + 84e9 / 8 optimizer = 26.25e9 bytes = 24.4 GiB > 24.
    assert refusal is not None and refusal.field == "__all__"
    assert refusal.message == (
        "model llama-7b needs ~24.4 GB per GPU (weights 13.0, grads 1.6, optimizer 9.8) on 8 GPUs, "
        "activations not counted; the mixed pool's GPUs have 24 GB (small: 8 × A10G 24 GB): "
        "use ZeRO-3, LoRA or more GPUs"
    )
    assert (
        launch_refusal(
            config=RunConfig(precision="bf16", zero_stage=3, gpus_per_node=8), size=LLAMA_7B, pool=pool
        )
        is None
    )


def test_all_the_gpus_of_a_node_count_when_none_are_asked_for():
    pool = Pool("a100", (_gpu("n1", 8, 80.0),))

    fits = launch_refusal(config=RunConfig(precision="bf16", zero_stage=3), size=LLAMA_7B, pool=pool)
    one = launch_refusal(
        config=RunConfig(precision="bf16", zero_stage=3, gpus_per_node=1), size=LLAMA_7B, pool=pool
    )

    assert fits is None  # 112e9 / 8 = 13 GB a GPU
    assert one is not None and "needs ~104.3 GB per GPU" in one.message and "on 1 GPU," in one.message


def test_bf16_on_gpus_older_than_ampere_is_refused_naming_the_gpu():
    pool = Pool("t4", (_gpu("t4-1", 1, 15.0, "7.5", "Tesla T4"),))

    refusal = launch_refusal(config=RunConfig(precision="bf16"), size=TINY, pool=pool)

    assert refusal is not None and refusal.field == "precision"
    assert refusal.message == (
        "bf16 needs GPUs of compute capability 8.0 or later; node t4-1 of the t4 pool has Tesla T4 "
        "(compute capability 7.5): use fp16 or fp32, or another pool"
    )
    assert launch_refusal(config=RunConfig(precision="fp16"), size=TINY, pool=pool) is None


def test_more_gpus_than_any_node_has_are_refused():
    pool = Pool("a100", (_gpu("n1", 4, 80.0), _gpu("n2", 8, 80.0)))

    refusal = launch_refusal(config=RunConfig(gpus_per_node=16), size=TINY, pool=pool)

    assert refusal is not None and refusal.field == "gpus_per_node"
    assert refusal.message.startswith("16 GPUs per node asked, but the a100 pool's nodes have at most 8 (n2:")


def test_lora_needs_a_hugging_face_model_on_any_pool():
    refusal = launch_refusal(config=RunConfig(lora_rank=8), size=TINY, pool=Pool("cpu"))

    assert refusal is not None and refusal.field == "lora_rank"
    assert refusal.message.startswith("LoRA needs a Hugging Face model: the built-in tiny model")


def test_a_pool_without_nodes_or_without_gpus_checks_no_gpu():
    huge = RunConfig(precision="bf16", gpus_per_node=64)
    cpu = Pool("cpu", (NodeResources(name="cpu-1", gpu_type="cpu", gpu_count=0, cpu_count=16),))

    assert launch_refusal(config=huge, size=LLAMA_7B, pool=Pool("h100")) is None
    assert launch_refusal(config=huge, size=LLAMA_7B, pool=cpu) is None


def test_fp16_on_a_pool_of_cpu_nodes_is_refused():
    cpu = Pool("cpu", (NodeResources(name="cpu-1", gpu_type="cpu", gpu_count=0, cpu_count=16),))

    refusal = launch_refusal(config=RunConfig(precision="fp16"), size=TINY, pool=cpu)

    assert refusal is not None and refusal.field == "precision"
    assert refusal.message.startswith("fp16 needs GPUs, and the cpu pool's nodes have none")
    assert launch_refusal(config=RunConfig(precision="fp16"), size=TINY, pool=Pool("empty")) is None
    assert launch_refusal(config=RunConfig(precision="bf16"), size=TINY, pool=cpu) is None


def test_rollout_vllm_is_refused_where_the_trainer_would_refuse_it():
    cpu = Pool("cpu", (NodeResources(name="cpu-1", gpu_type="cpu", gpu_count=0, cpu_count=16),))
    vllm = RunConfig(rollout="vllm")

    on_tiny = launch_refusal(config=vllm, size=TINY, pool=Pool("empty"))
    on_cpus = launch_refusal(config=vllm, size=LLAMA_7B, pool=cpu)

    assert on_tiny is not None and on_tiny.field == "rollout"
    assert on_tiny.message.startswith("rollout: vllm needs a Hugging Face model")
    assert on_cpus is not None and on_cpus.field == "rollout"
    assert on_cpus.message.startswith("rollout: vllm needs GPU nodes, and the cpu pool's nodes have none")
    assert launch_refusal(config=vllm, size=LLAMA_7B, pool=Pool("h100")) is None  # waits for its nodes


def test_a_model_of_unknown_size_is_not_refused_for_memory():
    pool = Pool("a10", (_gpu("a10-1", 1, 24.0, "8.6", "A10G"),))

    assert launch_refusal(config=RunConfig(), size=ModelSize(name="model x", params=None), pool=pool) is None


def test_the_shown_estimate_is_on_the_node_with_the_least_memory():
    pool = Pool("mixed", (_gpu("big", 8, 80.0), _gpu("small", 2, 24.0)))

    estimate = shown_estimate(config=RunConfig(precision="bf16", zero_stage=3), size=LLAMA_7B, pool=pool)

    assert estimate is not None and estimate.world_size == 2 and estimate.total == 112 * 10**9 // 2


def test_a_pool_label_says_its_nodes_and_gpus():
    assert (
        Pool("a100", (_gpu("n1", 8, 80.0), _gpu("n2", 8, 80.0))).label() == "a100 — 2 nodes, 8 × A100 80 GB"
    )
    mixed = Pool("mixed", (_gpu("n1", 8, 80.0), NodeResources(name="c", gpu_type="cpu", gpu_count=0)))
    assert mixed.label() == "mixed — 2 nodes: 8 × A100 80 GB (1), CPU only (1)"
    assert Pool("cpu").label() == "cpu — no node registered yet (the run waits for one)"
