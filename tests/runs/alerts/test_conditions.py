"""The breach conditions and the webhook signature, against their definitions computed by hand."""

import hashlib
import hmac
import math

import pytest

from runs.alerts.conditions import breaches, silent
from runs.alerts.signing import signature, signature_valid


@pytest.mark.parametrize(
    ("condition", "threshold", "value", "expected"),
    [
        ("above", 1.0, 1.5, True),
        ("above", 1.0, 1.0, False),  # strictly above
        ("above", 1.0, 0.5, False),
        ("below", 0.1, 0.05, True),
        ("below", 0.1, 0.1, False),
        ("below", 0.1, -math.inf, True),
        ("above", 1.0, math.nan, False),  # a NaN is neither above nor below: the NaN rule catches it
        ("below", 1.0, math.nan, False),
        ("nan", None, math.nan, True),
        ("nan", None, math.inf, True),
        ("nan", None, 0.0, False),
        ("above", None, 5.0, False),
    ],
)
def test_a_point_breaches_a_condition_as_its_definition_says(condition, threshold, value, expected):
    assert breaches(condition, threshold, value) is expected


def test_silence_is_strictly_longer_than_the_rule_minutes():
    assert not silent(last_seen_s=0, now_s=300, minutes=5)
    assert silent(last_seen_s=0, now_s=300.5, minutes=5)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_keyed_by_the_secret():
    body = b'{"event":"alert.fired"}'
    expected = hmac.new(b"s3cret-s3cret-s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(secret="s3cret-s3cret-s3cret", timestamp=1700000000, body=body) == f"sha256={expected}"


def test_a_receiver_refuses_a_forged_body_a_wrong_secret_and_a_replayed_timestamp():
    body, secret = b'{"x":1}', "k" * 20
    header = signature(secret=secret, timestamp=1000, body=body)
    assert signature_valid(secret=secret, timestamp="1000", body=body, header=header, now=1100)
    assert not signature_valid(secret=secret, timestamp="1000", body=b'{"x":2}', header=header, now=1100)
    assert not signature_valid(secret="j" * 20, timestamp="1000", body=body, header=header, now=1100)
    assert not signature_valid(secret=secret, timestamp="1000", body=body, header=header, now=1000 + 301)
    assert not signature_valid(secret=secret, timestamp="x", body=body, header=header, now=1000)
