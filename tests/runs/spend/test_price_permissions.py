"""Prices are shared by every team and bill every team's runs: site admins (superusers and staff) set
them; a team's admin reads them. A price is never negative — in the form, the service and the database."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.urls import reverse

from controlplane.accounts.models import Role
from runs.models import Node
from runs.nodes import NodeInfo, node_register
from runs.spend.models import GpuPrice
from runs.spend.services import PriceError, gpu_price_set, node_price_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def node():
    return node_register(
        info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", gpu_type="A100", gpu_count=8)
    )


@pytest.fixture
def team_admin():
    return UserFactory(username="ada", password=None, membership__role=Role.ADMIN)


@pytest.fixture(params=[{"is_staff": True}, {"is_superuser": True}], ids=["staff", "superuser"])
def site_admin(request):
    return UserFactory(username="site", password=None, membership=None, **request.param)


def cpu_price() -> Decimal:
    return GpuPrice.objects.get(pool="cpu").usd_per_gpu_hour  # seeded by spend.0002


def test_a_team_admin_reads_the_prices_without_a_form_to_change_them(client, team_admin, node):
    client.force_login(team_admin)

    response = client.get(reverse("spend:prices"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "cpu" in page and "gpu@h1" in page and "site admins set them" in page
    assert "Save price" not in page and "Save node price" not in page
    assert "Save team budget" in page  # the budgets of their team stay theirs to set


def test_a_team_admin_may_not_set_a_pool_or_node_price(client, team_admin, node):
    before = cpu_price()
    client.force_login(team_admin)

    pool = client.post(reverse("spend:prices"), {"pool": "cpu", "gpu_type": "cpu", "usd_per_gpu_hour": "0"})
    on_node = client.post(reverse("spend:node-price-set"), {"node": node.pk, "usd_per_gpu_hour": "0"})

    assert (pool.status_code, on_node.status_code) == (403, 403)
    node.refresh_from_db()
    assert (cpu_price(), node.usd_per_gpu_hour) == (before, None)
    with pytest.raises(PermissionDenied):
        gpu_price_set(pool="cpu", gpu_type="cpu", usd_per_gpu_hour=Decimal(0), user=team_admin)
    with pytest.raises(PermissionDenied):
        node_price_set(node_id=node.pk, usd_per_gpu_hour=Decimal(0), user=team_admin)


def test_a_site_admin_sets_pool_and_node_prices(client, site_admin, node):
    client.force_login(site_admin)

    pool = client.post(
        reverse("spend:prices"), {"pool": "h100", "gpu_type": "H100", "usd_per_gpu_hour": "2.5"}
    )
    on_node = client.post(reverse("spend:node-price-set"), {"node": node.pk, "usd_per_gpu_hour": "0"})

    assert (pool.status_code, on_node.status_code) == (302, 302)
    node.refresh_from_db()
    assert GpuPrice.objects.get(pool="h100").usd_per_gpu_hour == Decimal("2.5")
    assert node.usd_per_gpu_hour == 0.0  # free is a price; below it is not
    assert "Save price" in client.get(reverse("spend:prices")).content.decode()


@pytest.mark.parametrize("usd", ["-1", "-0.000001"])
def test_a_negative_pool_price_is_refused_by_the_form_naming_the_field(client, site_admin, usd):
    before = cpu_price()
    client.force_login(site_admin)

    response = client.post(
        reverse("spend:prices"), {"pool": "cpu", "gpu_type": "cpu", "usd_per_gpu_hour": usd}
    )

    assert response.status_code == 400
    assert "USD per GPU-hour: Ensure this value is greater than or equal to 0" in response.content.decode()
    assert cpu_price() == before


def test_a_negative_node_price_is_refused_by_the_form(client, site_admin, node):
    client.force_login(site_admin)

    response = client.post(
        reverse("spend:node-price-set"), {"node": node.pk, "usd_per_gpu_hour": "-1"}, follow=True
    )

    assert "Node price not saved: usd_per_gpu_hour:" in response.content.decode()
    node.refresh_from_db()
    assert node.usd_per_gpu_hour is None


@pytest.mark.parametrize("usd", [Decimal("-1"), Decimal("NaN"), Decimal("-Infinity")])
def test_the_price_services_refuse_a_negative_or_non_number_price(node, usd):
    with pytest.raises(PriceError, match="usd_per_gpu_hour: must be a number ≥ 0"):
        gpu_price_set(pool="cpu", gpu_type="cpu", usd_per_gpu_hour=usd, user=None)
    with pytest.raises(PriceError, match="usd_per_gpu_hour: must be a number ≥ 0"):
        node_price_set(node_id=node.pk, usd_per_gpu_hour=usd, user=None)


def test_the_database_refuses_a_negative_pool_price():
    with pytest.raises(IntegrityError), transaction.atomic():
        GpuPrice.objects.filter(pool="cpu").update(usd_per_gpu_hour=Decimal("-1"))


@pytest.mark.parametrize("usd", [-2.0, float("nan")])
def test_a_node_that_states_a_negative_price_keeps_the_one_set_for_it(node, usd):
    node_price_set(node_id=node.pk, usd_per_gpu_hour=Decimal("4"), user=None)

    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", usd_per_gpu_hour=usd))

    assert Node.objects.get(pk=node.pk).usd_per_gpu_hour == 4.0
