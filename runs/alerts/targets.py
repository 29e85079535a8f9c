"""Where a webhook may go. Fail closed: a URL whose host is (or resolves to) a private, loopback,
link-local or otherwise non-public address is refused, so that a rule cannot make the control plane
POST into its own network, unless TRIAD_WEBHOOK_ALLOW_PRIVATE is on (development and tests)."""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


def _address_refusal(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global:
        return f"{address} is a private, loopback or reserved address (TRIAD_WEBHOOK_ALLOW_PRIVATE is off)"
    return ""


def webhook_url_problem(url: str) -> str:
    """Why the URL cannot be a webhook as written ("" if it can): scheme, host, and a literal address or
    `localhost` that is not public. Names are resolved at delivery (`webhook_target`)."""
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


@dataclass(frozen=True)
class Target:
    """Where a delivery goes: `refusal` ("" when it may go) and the address its host resolved to, which
    the request then connects to (`pinned_request`), so that a name cannot resolve to a public address
    for the check and to a private one for the connection (DNS rebinding)."""

    refusal: str
    address: str = ""


def webhook_target(url: str) -> Target:
    """At delivery: resolve the host once and decide. Every address it resolves to must be public, unless
    private targets are allowed; the first is the one connected to."""
    if problem := webhook_url_problem(url):
        return Target(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return Target(f"cannot resolve {host}: {exc}")
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        return Target(f"cannot resolve {host}: no address")
    if not settings.TRIAD_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            if refusal := _address_refusal(address):
                return Target(refusal)
    return Target("", addresses[0])


def pinned_request(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL to connect to, extra headers, httpx extensions): the URL's host replaced by the resolved
    address, the Host header kept, and for https the name sent in TLS (SNI) and checked against the
    certificate kept too (httpx's `sni_hostname` extension)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    headers = {"Host": f"{host}:{parts.port}" if parts.port else host}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), headers, extensions
