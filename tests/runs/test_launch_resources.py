"""Resources at launch: the pool picker, the memory estimate on the launch page, and run_launch's refusals
before anything is stored, queued or billed (docs/runs.md, "Resources")."""

import pytest
from django.urls import reverse

from runs.launch import RunLaunchError, run_launch
from runs.models import Run
from runs.nodes import NodeInfo, node_register
from runs.spend.models import CostEntry
from tests.factories import ProblemFactory, RegisteredModelFactory, TeamFactory, UserFactory
from tests.runs.launch_form import LAUNCH_FORM
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db


def _node(name, pool, *, gpu_type="cpu", gpus=0, memory=None, capability="", cpus=16):
    return node_register(
        info=NodeInfo(
            name=name,
            hostname=name,
            pool=pool,
            gpu_type=gpu_type,
            gpu_count=gpus,
            gpu_memory_gb=memory,
            compute_capability=capability,
            cpu_count=cpus,
        )
    )


def _llama_7b(user, pool):
    return RegisteredModelFactory(
        name="llama-7b", registered_by=user, pool=pool, params=7_000_000_000, hidden_size=4096, num_layers=32
    )


def _launch(user, *, config, model=None, pool=""):
    return run_launch(
        user=user, dataset_version=ProblemFactory().version, name="r", config=config, model=model, pool=pool
    )


def _refused(user, **kwargs) -> RunLaunchError:
    with pytest.raises(RunLaunchError) as refused:
        _launch(user, **kwargs)
    assert not Run.objects.exists() and not CostEntry.objects.exists()  # nothing stored, queued, billed
    return refused.value


def test_a_model_that_does_not_fit_the_pools_gpus_is_refused_with_the_numbers(user):
    _node("a10-1", "a10", gpu_type="A10G", gpus=1, memory=24.0, capability="8.6")

    refused = _refused(user, config=RunConfig(precision="bf16"), model=_llama_7b(user, "a10"))

    assert str(refused) == (
        "model llama-7b needs ~104.3 GB per GPU (weights 13.0, grads 13.0, optimizer 78.2) on 1 GPU, "
        "activations not counted; the a10 pool's GPUs have 24 GB (a10-1: 1 × A10G 24 GB): "
        "use ZeRO-1 to 3, LoRA or more GPUs with ZeRO"
    )


def test_the_same_model_with_lora_fits(user, django_capture_on_commit_callbacks):
    _node("a10-1", "a10", gpu_type="A10G", gpus=1, memory=24.0, capability="8.6")

    with django_capture_on_commit_callbacks(execute=False):
        launched = _launch(
            user, config=RunConfig(precision="bf16", lora_rank=16), model=_llama_7b(user, "a10")
        )

    assert launched.run.pool == "a10"  # 13.5 GB a GPU


def test_bf16_on_a_pool_of_older_gpus_is_refused(user):
    _node("t4-1", "t4", gpu_type="Tesla T4", gpus=4, memory=15.0, capability="7.5")

    refused = _refused(user, config=RunConfig(precision="bf16"), pool="t4")

    assert refused.field == "precision"
    assert "node t4-1 of the t4 pool has Tesla T4 (compute capability 7.5)" in str(refused)


def test_more_gpus_per_node_than_the_pools_nodes_have_are_refused(user):
    _node("a100-1", "a100", gpu_type="A100", gpus=8, memory=80.0, capability="8.0")

    refused = _refused(user, config=RunConfig(gpus_per_node=9), pool="a100")

    assert refused.field == "gpus_per_node"
    assert "9 GPUs per node asked, but the a100 pool's nodes have at most 8" in str(refused)


def test_lora_with_the_built_in_tiny_model_is_refused(user):
    refused = _refused(user, config=RunConfig(lora_rank=8))

    assert refused.field == "lora_rank"
    assert str(refused).startswith("LoRA needs a Hugging Face model")


def test_a_pool_with_no_node_or_only_cpus_refuses_nothing(user, django_capture_on_commit_callbacks):
    _node("cpu-1", "cpu")
    huge = RunConfig(precision="bf16", gpus_per_node=64)

    with django_capture_on_commit_callbacks(execute=False):
        waits = _launch(user, config=huge, model=_llama_7b(user, "h100"))
        on_cpu = _launch(user, config=huge, pool="cpu")

    assert (waits.run.pool, on_cpu.run.pool) == ("h100", "cpu")


def test_the_launch_form_offers_the_pools_nodes_announced(logged_in):
    _node("a100-1", "a100", gpu_type="A100", gpus=8, memory=80.0, capability="8.0")
    _node("a100-2", "a100", gpu_type="A100", gpus=8, memory=80.0, capability="8.0")
    _node("cpu-1", "cpu")
    ProblemFactory()

    page = logged_in.get(reverse("runs:launch")).content.decode()

    assert '<option value="a100">a100 — 2 nodes, 8 × A100 80 GB</option>' in page
    assert '<option value="cpu">cpu — 1 node, CPU only</option>' in page
    assert "<legend>Engine</legend>" in page and 'name="zero_stage"' in page


def test_with_no_node_registered_the_form_offers_the_default_pool(logged_in, settings):
    settings.TRIAD_DEFAULT_POOL = "cpu"
    ProblemFactory()

    page = logged_in.get(reverse("runs:launch")).content.decode()

    assert '<option value="cpu">cpu — no node registered yet (the run waits for one)</option>' in page


def test_the_form_sends_the_run_to_the_chosen_pool(logged_in, django_capture_on_commit_callbacks):
    _node("a100-1", "a100", gpu_type="A100", gpus=8, memory=80.0, capability="8.0")
    version = ProblemFactory().version

    with django_capture_on_commit_callbacks(execute=False):
        response = logged_in.post(
            reverse("runs:launch"), {**LAUNCH_FORM, "dataset_version": version.pk, "pool": "a100"}
        )

    assert response.status_code == 302
    assert Run.objects.get().pool == "a100"


def test_a_pool_no_node_announced_is_not_offered(logged_in):
    _node("a100-1", "a100", gpu_type="A100", gpus=8, memory=80.0, capability="8.0")
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"), {**LAUNCH_FORM, "dataset_version": version.pk, "pool": "zz"}
    )

    assert "Select a valid choice. zz is not one of the available choices." in response.content.decode()
    assert not Run.objects.exists()


def test_a_refusal_through_the_form_is_shown_and_nothing_is_launched(logged_in, user):
    _node("a10-1", "a10", gpu_type="A10G", gpus=1, memory=24.0, capability="8.6")
    model = _llama_7b(user, "a10")
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"),
        {
            **LAUNCH_FORM,
            "dataset_version": version.pk,
            "model": model.pk,
            "precision": "bf16",
            "zero_stage": 0,
        },
    )

    assert response.status_code == 200
    assert "model llama-7b needs ~104.3 GB per GPU" in response.content.decode()
    assert not Run.objects.exists() and not CostEntry.objects.exists()


def test_a_refusal_of_a_yaml_setting_points_at_its_line(logged_in):
    _node("t4-1", "t4", gpu_type="Tesla T4", gpus=4, memory=15.0, capability="7.5")
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"),
        {
            **LAUNCH_FORM,
            "dataset_version": version.pk,
            "pool": "t4",
            "config_yaml": "steps: 3\nprecision: bf16\n",
        },
    )

    assert "config line 2, &#x27;precision&#x27;: bf16 needs GPUs of compute capability 8.0" in (
        response.content.decode()
    )
    assert not Run.objects.exists()


def test_the_estimate_panel_shows_the_memory_per_gpu_and_the_refusal(logged_in, user):
    _node("a10-1", "a10", gpu_type="A10G", gpus=1, memory=24.0, capability="8.6")
    model = _llama_7b(user, "a10")

    page = logged_in.get(
        reverse("spend:estimate"), {"model": model.pk, "precision": "bf16", "zero_stage": 0, "beta": 0.1}
    ).content.decode()

    assert (
        "Memory per GPU:\n  ~117.3 GB (weights 13.0, grads 13.0, optimizer 78.2, reference 13.0) "
        "on 1 rank of pool a10, model llama-7b; activations not counted."
    ) in page
    assert "A launch would be refused: model llama-7b needs ~117.3 GB per GPU" in page


def test_the_estimate_panel_of_the_tiny_model_on_a_fresh_install(logged_in):
    page = logged_in.get(reverse("spend:estimate"), {"gpus_per_node": 2}).content.decode()

    # 149,440 parameters × 16 bytes in fp32 = 2.3 MB, over the 2 trainer processes asked for, plus the
    # policy as RL started (4 bytes a parameter) that the KL monitor keeps for a model this small.
    assert "~2.9 MB (weights 0.6, grads 0.6, optimizer 1.1, reference 0.6) on 2 ranks of pool cpu" in page
    assert "refused" not in page


def test_the_estimate_panel_hides_a_model_the_user_does_not_read(logged_in):
    outsider = UserFactory(membership__team=TeamFactory(name="other"))
    other = RegisteredModelFactory(name="secret", registered_by=outsider, params=7_000_000_000)

    page = logged_in.get(reverse("spend:estimate"), {"model": other.pk}).content.decode()

    assert "secret" not in page and "the built-in tiny model" in page


def test_the_estimate_panel_shows_a_pool_other_than_the_models(logged_in, user):
    _node("a10-1", "a10", gpu_type="A10G", gpus=1, memory=24.0, capability="8.6")
    model = _llama_7b(user, "h100")

    page = logged_in.get(reverse("spend:estimate"), {"model": model.pk, "pool": "a10"}).content.decode()

    assert "A launch would be refused: model llama-7b is registered on pool h100, not a10" in page


def test_sandbox_mode_fleet_is_refused_where_there_is_no_redis_to_reach_a_fleet(user, settings):
    """The embedded default: a filesystem broker and no result backend (docs/sandbox.md, "The sandbox
    fleet")."""
    settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND = "filesystem://", None

    refused = _refused(user, config=RunConfig(sandbox_mode="fleet"))

    assert refused.field == "sandbox_mode"
    assert "no sandbox fleet" in str(refused) and "Redis broker" in str(refused)


def test_sandbox_mode_fleet_is_refused_without_a_result_backend(user, settings):
    settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/9", None

    refused = _refused(user, config=RunConfig(sandbox_mode="fleet"))

    assert "Redis result backend" in str(refused)


def test_sandbox_mode_fleet_launches_on_redis(user, settings, django_capture_on_commit_callbacks):
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/9"

    with django_capture_on_commit_callbacks(execute=False):  # launched, not sent
        run = _launch(user, config=RunConfig(sandbox_mode="fleet")).run

    assert Run.objects.get(pk=run.pk).config["sandbox_mode"] == "fleet"


def test_sandbox_mode_takes_local_or_fleet_only():
    from workers.spec import SettingError, config_from_dict

    with pytest.raises(SettingError, match="sandbox_mode: must be one of local, fleet"):
        config_from_dict({"sandbox_mode": "cloud"}, config_type=RunConfig)
