import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from controlplane.accounts.models import DEFAULT_TEAM, Membership, Role, Team
from datasets_app.models import Dataset, DatasetVersion, Problem, ProblemStatus
from runs.models import Generation, Run
from runs.tokens import token_hash

TEST_TOKEN = "triad_run_test-token"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")
    # Every user is a member of the default team unless told otherwise: `membership__role="viewer"`,
    # `membership__team=team`, or `membership=None` for a user in no team.
    membership = factory.RelatedFactory("tests.factories.MembershipFactory", factory_related_name="user")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"team-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership
        django_get_or_create = ("team", "user")

    team = factory.SubFactory(TeamFactory, name=DEFAULT_TEAM)
    user = factory.SubFactory(UserFactory, membership=None)
    role = Role.MEMBER


def _team_of(user) -> Team:
    """A run's team by default: its creator's first team, else the default one."""
    membership = Membership.objects.filter(user=user).order_by("pk").first()
    return membership.team if membership else TeamFactory(name=DEFAULT_TEAM)


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    created_by = factory.SubFactory(UserFactory)
    # Its creator's first team, else the default one (as a run's); `team=None` for a shared dataset.
    team = factory.LazyAttribute(lambda dataset: _team_of(dataset.created_by))


class DatasetVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DatasetVersion

    dataset = factory.SubFactory(DatasetFactory)
    number = 1
    content_hash = factory.Sequence(lambda n: f"{n:064x}")
    problem_count = 1
    created_by = factory.SelfAttribute("dataset.created_by")


class ProblemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Problem

    version = factory.SubFactory(DatasetVersionFactory)
    index = factory.Sequence(lambda n: n)
    task_id = factory.Sequence(lambda n: f"Test/{n}")
    prompt = "def add(a, b):\n"
    entry_point = "add"
    solution = "    return a + b\n"
    tests = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
    status = ProblemStatus.VERIFIED  # runs train on verified problems; tests of verification override it


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    name = factory.Sequence(lambda n: f"run-{n}")
    created_by = factory.SubFactory(UserFactory)
    team = factory.LazyAttribute(lambda run: _team_of(run.created_by))
    dataset_version = factory.SubFactory(DatasetVersionFactory)
    config = factory.LazyFunction(lambda: {"steps": 2})
    token_hash = token_hash(TEST_TOKEN)


class MetricPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "runs.MetricPoint"

    run = factory.SubFactory(RunFactory)
    key = "pass_rate"
    step = factory.Sequence(lambda n: n)
    value = 0.0
    wall_time = factory.LazyFunction(timezone.now)


class GenerationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Generation

    run = factory.SubFactory(RunFactory)
    step = 0
    problem_id = "Test/0"
    completion = "    return a - b\n"
    reward = 0.0
    passed = False
    error_class = "wrong_answer"
    tests_passed = 0
    tests_total = 1
    stderr = (
        'Traceback (most recent call last):\n  File "<tests>", line 2, in check\n'
        "    assert candidate(1, 2) == 3\nAssertionError\n"
    )


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    """A model a node of pool cpu found ready (`status="pending"` for one it has not answered about)."""

    class Meta:
        model = "registry.RegisteredModel"

    name = factory.Sequence(lambda n: f"model-{n}")
    source = "/models/tiny"
    pool = "cpu"
    registered_by = factory.SubFactory(UserFactory)
    team = factory.LazyAttribute(lambda model: _team_of(model.registered_by))
    status = "ready"
    architecture = "LlamaForCausalLM"
    params = 130_496
    vocab_size = 441
    context_length = 1024
