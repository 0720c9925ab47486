"""Which webhook targets are refused (server-side request forgery): a URL must be `http` or
`https` with a host, and no address it names or resolves to may be loopback, link-local,
private, unique-local, shared (CGNAT), multicast, reserved, unspecified or a cloud metadata
endpoint, unless the operator's allow-list (networks and host names) permits it.

Pure rules only; resolving a name is the caller's (`infra.webhooks.resolver`), which checks
every address the name resolves to and then connects to the checked address itself, so a
second lookup cannot swap in another (no time-of-check/time-of-use gap).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from domain.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2048

METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "metadata.azure.com"}
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class TargetRefused(ValidationFailed):
    """A webhook URL (or an address it resolves to, or a redirect) that may not be called."""


def refusal(address: IPAddress) -> str | None:
    """Why `address` may not be called (None: a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped)
    checks = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "a CGNAT address"),
        (
            isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL,
            "a unique-local address",
        ),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
    )
    return next((why for refused, why in checks if refused), None)


@dataclass(frozen=True)
class AllowList:
    """The operator's exceptions: networks (CIDR or single addresses) and host names."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """From `10.1.0.0/16`, `127.0.0.1`, `[::1]`, `hooks.internal` entries (ValueError for a
        malformed network)."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in entries:
            entry = raw.strip().strip("[]").lower()
            if not entry:
                continue
            if any(c.isalpha() for c in entry) and ":" not in entry and "/" not in entry:
                hosts.add(entry.rstrip("."))
            else:
                networks.append(ipaddress.ip_network(entry, strict=False))
        return cls(tuple(networks), frozenset(hosts))

    def permits_address(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)

    def permits_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts


@dataclass(frozen=True)
class Target:
    """A checked URL, split: its host (a name or an address literal) and port."""

    url: str
    scheme: str
    host: str
    port: int

    @property
    def literal(self) -> IPAddress | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_target(url: object, field: str = "webhook_url") -> Target:
    """The URL's parts, or TargetRefused for anything but an absolute http(s) URL with a host
    and no credentials."""
    if not isinstance(url, str) or not url.strip():
        raise TargetRefused.field(field, "must be an http:// or https:// URL")
    text = url.strip()
    if len(text) > MAX_URL or any(ord(c) < 0x21 for c in text):
        raise TargetRefused.field(field, f"must be a URL of at most {MAX_URL} printable characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise TargetRefused.field(field, "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused.field(field, "must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused.field(field, "must not carry credentials")
    default = 443 if parts.scheme == "https" else 80
    return Target(text, parts.scheme, parts.hostname.lower().rstrip("."), port or default)


def check_host(target: Target, allow: AllowList, field: str = "webhook_url") -> None:
    """Refuse a metadata host name or a refused address literal (before any resolution)."""
    if allow.permits_host(target.host):
        return
    if target.host in METADATA_HOSTS:
        raise TargetRefused.field(field, "must not be a cloud metadata endpoint")
    literal = target.literal
    if literal is not None:
        check_address(literal, allow, field)


def check_address(address: IPAddress, allow: AllowList, field: str = "webhook_url") -> None:
    """Refuse an address (a literal, or one a name resolved to) unless allow-listed."""
    why = refusal(address)
    if why is not None and not allow.permits_address(address):
        raise TargetRefused.field(field, f"must not resolve to {why} ({address})")
