"""Where a webhook may go. Fail closed: a URL whose host is (or resolves to) a private, loopback,
link-local or otherwise non-public address is refused, so that a rule cannot make the control plane
POST into its own network, unless TRIAD_WEBHOOK_ALLOW_PRIVATE is on (development and tests)."""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


def _address_refusal(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global:
        return f"{address} is a private, loopback or reserved address (TRIAD_WEBHOOK_ALLOW_PRIVATE is off)"
    return ""


def webhook_url_problem(url: str) -> str:
    """Why the URL cannot be a webhook as written ("" if it can): scheme, host, and a literal address or
    `localhost` that is not public. Names are resolved at delivery (`webhook_target_refusal`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http:// or https:// URL with a host"
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if settings.TRIAD_WEBHOOK_ALLOW_PRIVATE:
        return ""
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine (TRIAD_WEBHOOK_ALLOW_PRIVATE is off)"
    try:
        return _address_refusal(host)
    except ValueError:
        return ""  # a name: resolved, and checked, when a delivery goes out


def webhook_target_refusal(url: str) -> str:
    """At delivery: why this URL must not be called now ("" if it may). Every address its host resolves
    to must be public, unless private targets are allowed."""
    problem = webhook_url_problem(url)
    if problem or settings.TRIAD_WEBHOOK_ALLOW_PRIVATE:
        return problem
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {parts.hostname}: {exc}"
    for info in infos:
        if refusal := _address_refusal(str(info[4][0])):
            return refusal
    return ""
