"""Delivery beyond the app: a signed JSON POST to a webhook receiver this test runs on loopback, retried
with backoff and every attempt recorded; mail through Django's mail settings (the locmem backend)."""

import json
import socket
import time

import pytest
from django.core import mail

from runs.alerts.evaluation import alert_metrics_evaluate
from runs.alerts.models import AlertFiring, Delivery
from runs.alerts.signing import signature_valid
from runs.alerts.targets import pinned_request
from runs.alerts.tasks import alert_metrics_evaluate_task, alert_webhook_task
from tests.factories import MetricPointFactory
from tests.runs.alerts.receiver import Receiver

pytestmark = pytest.mark.django_db
SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def breach(run, rule, value=9.0, step=3, *, deliver=False):
    """A point, then its evaluation: by the task (which sends what it fired), or (deliver=False) by the
    evaluation alone, for the test to call the delivery task itself."""
    MetricPointFactory(run=run, key=rule.metric_key, step=step, value=value)
    if deliver:
        alert_metrics_evaluate_task.apply(args=[run.pk])
    else:
        alert_metrics_evaluate(run_id=run.pk)
    return AlertFiring.objects.filter(rule=rule).order_by("-pk").first()


def test_a_firing_is_posted_to_the_webhook_signed_with_the_rules_secret(run, make_rule, receiver, eager):
    rule = make_rule(
        condition="above", metric_key="kl", threshold=1, webhook_url=receiver.url, webhook_secret=SECRET
    )
    firing = breach(run, rule, deliver=True)
    (request,) = receiver.requests
    assert request.path == "/hooks/triad" and request.headers["Content-Type"] == "application/json"
    assert signature_valid(
        secret=SECRET,
        timestamp=request.headers["X-Triad-Timestamp"],
        body=request.body,
        header=request.headers["X-Triad-Signature"],
        now=time.time(),
    )
    payload = json.loads(request.body)
    assert payload["event"] == "alert.fired"
    assert payload["firing"] == {
        "id": firing.pk,
        "step": 3,
        "value": 9.0,
        "message": firing.message,
        "fired_at": firing.fired_at.isoformat(),
    }
    assert payload["rule"]["description"] == "kl rises above 1"
    assert (payload["run"]["id"], payload["run"]["name"]) == (run.pk, "grpo-7b")
    (delivery,) = Delivery.objects.filter(firing=firing)
    assert (delivery.channel, delivery.ok, delivery.status_code, delivery.attempt) == (
        "webhook",
        True,
        200,
        1,
    )


def test_a_failing_webhook_is_retried_with_backoff_and_every_attempt_is_recorded(
    run, make_rule, receiver, eager, settings
):
    settings.TRIAD_WEBHOOK_ATTEMPTS = 4
    receiver.statuses = [500, 503]  # then 200
    rule = make_rule(
        condition="above", metric_key="kl", threshold=1, webhook_url=receiver.url, webhook_secret=SECRET
    )
    firing = breach(run, rule)
    alert_webhook_task.apply(args=[firing.pk])
    assert len(receiver.requests) == 3
    attempts = list(
        Delivery.objects.filter(firing=firing).order_by("attempt").values_list("attempt", "status_code", "ok")
    )
    assert attempts == [(1, 500, False), (2, 503, False), (3, 200, True)]
    # each attempt signs afresh, and says which attempt it is
    assert [r.headers["X-Triad-Delivery"] for r in receiver.requests] == [
        f"{firing.pk}-{n}" for n in (1, 2, 3)
    ]


def test_retries_stop_after_the_configured_attempts_and_a_4xx_is_not_retried(
    run, make_rule, receiver, eager, settings
):
    settings.TRIAD_WEBHOOK_ATTEMPTS = 3
    receiver.statuses = [500] * 10
    rule = make_rule(
        condition="above", metric_key="kl", threshold=1, webhook_url=receiver.url, webhook_secret=SECRET
    )
    firing = breach(run, rule)
    alert_webhook_task.apply(args=[firing.pk])
    assert Delivery.objects.filter(firing=firing).count() == 3
    receiver.statuses = [410]
    breach(run, rule, value=0.0, step=4)  # clears, then breaches again
    second = breach(run, rule, value=5.0, step=5)
    assert second.pk != firing.pk
    alert_webhook_task.apply(args=[second.pk])
    assert list(Delivery.objects.filter(firing=second).values_list("status_code", flat=True)) == [410]


def test_an_unreachable_webhook_records_the_error(run, make_rule, eager, settings):
    settings.TRIAD_WEBHOOK_ATTEMPTS = 2
    closed = Receiver().start()
    url = closed.url
    closed.stop()  # nothing listens there now
    rule = make_rule(condition="above", metric_key="kl", threshold=1, webhook_url=url, webhook_secret=SECRET)
    firing = breach(run, rule)
    alert_webhook_task.apply(args=[firing.pk])
    errors = list(Delivery.objects.filter(firing=firing).values_list("ok", "error"))
    assert len(errors) == 2 and all(not ok and "ConnectError" in error for ok, error in errors)


def test_webhooks_to_loopback_are_refused_unless_private_targets_are_allowed(
    run, make_rule, receiver, eager, settings
):
    rule = make_rule(
        condition="above", metric_key="kl", threshold=1, webhook_url=receiver.url, webhook_secret=SECRET
    )
    settings.TRIAD_WEBHOOK_ALLOW_PRIVATE = False
    firing = breach(run, rule)
    alert_webhook_task.apply(args=[firing.pk])
    (delivery,) = Delivery.objects.filter(firing=firing)  # refused once, not retried
    assert not delivery.ok and delivery.error.startswith("refused: 127.0.0.1 is a private")
    assert receiver.requests == []


def test_a_delivery_connects_to_the_address_it_checked_never_resolving_the_name_again(
    run, make_rule, receiver, eager, monkeypatch
):
    # DNS rebinding: the name answers a good address for the check and another for the connection.
    # The delivery connects to the address it checked, sending the name as Host.
    port = receiver.url.split(":")[2].split("/")[0]
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"])

    def rebinding(host, *args, **kwargs):
        if host == "hooks.example.test":
            return real(next(answers, "10.255.255.1"), *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    rule = make_rule(
        condition="above",
        metric_key="kl",
        threshold=1,
        webhook_url=f"http://hooks.example.test:{port}/hooks/triad",
        webhook_secret=SECRET,
    )
    firing = breach(run, rule)
    alert_webhook_task.apply(args=[firing.pk])
    (delivery,) = Delivery.objects.filter(firing=firing)
    assert delivery.ok, delivery.error
    (request,) = receiver.requests
    assert request.headers["Host"] == f"hooks.example.test:{port}"


def test_a_pinned_https_request_keeps_the_name_for_the_host_header_and_tls():
    url, headers, extensions = pinned_request("https://hooks.example:8443/in?x=1", "2001:db8::7")
    assert url == "https://[2001:db8::7]:8443/in?x=1"
    assert headers == {"Host": "hooks.example:8443"} and extensions == {"sni_hostname": "hooks.example"}
    assert pinned_request("http://hooks.example/in", "198.51.100.4") == (
        "http://198.51.100.4/in",
        {"Host": "hooks.example"},
        {},
    )


def test_a_firing_is_mailed_to_the_rules_addresses(run, make_rule, eager):
    rule = make_rule(
        condition="below", metric_key="pass_rate", threshold=0.5, emails=["ops@example.com", "ml@example.com"]
    )
    firing = breach(run, rule, value=0.25, deliver=True)
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "ml@example.com"]
    assert message.subject == f"[Triad] pass_rate falls below 0.5: run #{run.pk} grpo-7b"
    assert "pass_rate = 0.25 at step 3" in message.body and f"/runs/{run.pk}/" in message.body
    (delivery,) = Delivery.objects.filter(firing=firing)
    assert (delivery.channel, delivery.ok, delivery.target) == (
        "mail",
        True,
        "ops@example.com, ml@example.com",
    )
