"""Delivering a firing beyond the app: mail through Django's mail settings, and a webhook: a JSON POST
signed with the rule's secret (runs/alerts/signing.py). Every attempt is recorded as a Delivery."""

import json
import math
import time
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from runs.alerts.models import AlertFiring, Channel, Delivery
from runs.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from runs.alerts.targets import pinned_request, webhook_target

WEBHOOK_TIMEOUT_S = 10.0
RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))


def _firing(firing_id: int) -> AlertFiring | None:
    return (
        AlertFiring.objects.select_related("rule__team", "run", "dataset_version__dataset")
        .filter(pk=firing_id)
        .first()
    )


def _subject_of(firing: AlertFiring) -> tuple[str, str]:
    """What the firing is about, in words, and its page: the run, or (a diversity rule) the version."""
    if firing.run is not None:
        run = firing.run
        return f"run #{run.pk} {run.name}", settings.TRIAD_CONTROL_URL + reverse("runs:detail", args=[run.pk])
    version = firing.dataset_version
    if version is None:
        return "", ""
    url = reverse("datasets:detail", args=[version.dataset_id])
    return f"dataset {version.dataset.name} v{version.number}", settings.TRIAD_CONTROL_URL + url


def _number(value: float | None) -> float | str | None:
    """JSON has no NaN: a non-finite value is sent as its name."""
    return value if value is None or math.isfinite(value) else str(value)


def firing_payload(firing: AlertFiring) -> dict[str, Any]:
    """The webhook's body (docs/alerts.md, "Webhooks")."""
    rule, run, version = firing.rule, firing.run, firing.dataset_version
    return {
        "event": "alert.fired",
        "firing": {
            "id": firing.pk,
            "step": firing.step,
            "value": _number(firing.value),
            "message": firing.message,
            "fired_at": firing.fired_at.isoformat(),
        },
        "rule": {
            "id": rule.pk,
            "name": rule.name,
            "condition": rule.condition,
            "metric_key": rule.metric_key,
            "threshold": rule.threshold,
            "description": rule.describe(),
            "url": settings.TRIAD_CONTROL_URL + reverse("alerts:rule", args=[rule.pk]),
        },
        "run": None
        if run is None
        else {
            "id": run.pk,
            "name": run.name,
            "status": run.status,
            "team": rule.team.name,
            "url": settings.TRIAD_CONTROL_URL + reverse("runs:detail", args=[run.pk]),
        },
        # A diversity rule's firing is on a dataset version (docs/alerts.md); else null.
        "dataset_version": None
        if version is None
        else {
            "id": version.pk,
            "dataset": version.dataset.name,
            "number": version.number,
            "flags": version.diversity_flags,
            "url": _subject_of(firing)[1],
        },
    }


def alert_mail_send(*, firing_id: int, attempt: int) -> Delivery | None:
    """Mail the firing to its rule's addresses, recording the attempt; None when the firing is gone."""
    firing = _firing(firing_id)
    if firing is None or not firing.rule.emails:
        return None
    rule = firing.rule
    what, url = _subject_of(firing)
    subject = f"[Triad] {rule}: {what}"
    body = (
        f"{firing.message}\n\n{'Run' if firing.run_id else 'Dataset'}: {url}\n"
        f"Rule: {settings.TRIAD_CONTROL_URL}{reverse('alerts:rule', args=[rule.pk])}\n"
    )
    delivery = Delivery(firing=firing, channel=Channel.MAIL, target=", ".join(rule.emails), attempt=attempt)
    try:
        send_mail(subject.replace("\n", " ")[:200], body, None, rule.emails, fail_silently=False)
        delivery.ok = True
    except Exception as exc:  # smtplib's errors, a refused connection, a bad backend setting
        delivery.error = f"{type(exc).__name__}: {exc}"[:2000]
    delivery.at = timezone.now()
    delivery.save()
    return delivery


def alert_webhook_post(*, firing_id: int, attempt: int) -> tuple[Delivery | None, bool]:
    """POST the firing to its rule's webhook, signed, recording the attempt. Returns it and whether it is
    worth trying again (a network error, a 5xx, 408, 425 or 429); (None, False) when there is nothing to
    deliver any more (the firing or its webhook is gone)."""
    firing = _firing(firing_id)
    if firing is None or not firing.rule.webhook_url:
        return None, False
    rule = firing.rule
    delivery = Delivery(firing=firing, channel=Channel.WEBHOOK, target=rule.webhook_url, attempt=attempt)
    retry = False
    target = webhook_target(rule.webhook_url)
    if target.refusal:
        delivery.error = f"refused: {target.refusal}"
    else:
        body = json.dumps(firing_payload(firing), separators=(",", ":")).encode()
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Triad-Alerts/1",
            TIMESTAMP_HEADER: str(now),
            SIGNATURE_HEADER: signature(secret=rule.webhook_secret, timestamp=now, body=body),
            "X-Triad-Delivery": f"{firing.pk}-{attempt}",
        }
        url, host_header, extensions = pinned_request(rule.webhook_url, target.address)
        try:
            # No redirects: a redirect could lead to an address the target check refused.
            # Connected to the address that was checked, never resolved again (DNS rebinding).
            with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False) as client:
                request = client.build_request(
                    "POST", url, content=body, headers={**headers, **host_header}, extensions=extensions
                )
                response = client.send(request)
            delivery.status_code = response.status_code
            delivery.ok = 200 <= response.status_code < 300
            retry = response.status_code in RETRY_STATUSES
            if not delivery.ok:
                delivery.error = f"HTTP {response.status_code}: {response.text[:500]}"
        except httpx.HTTPError as exc:
            delivery.error = f"{type(exc).__name__}: {exc}"[:2000]
            retry = True
    delivery.at = timezone.now()
    delivery.save()
    return delivery, retry
