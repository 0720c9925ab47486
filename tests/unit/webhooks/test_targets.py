"""The SSRF rules of webhook targets, and the guard that resolves a name and checks every
address it resolves to (on a resolver the test controls: no lookup leaves the process)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from domain.webhooks.targets import AllowList, TargetRefused, parse_target, refusal
from infra.webhooks.resolver import TargetGuard


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("10.0.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.0.1", "a private address"),
        ("fc00::1", "a unique-local address"),
        ("fd12:3456::1", "a unique-local address"),
        ("100.64.0.1", "a CGNAT address"),
        ("100.127.255.254", "a CGNAT address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "the unspecified address"),  # noqa: S104 - an address under test
        ("::", "the unspecified address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("240.0.0.1", "a private address"),
    ],
)
def test_refused_addresses_say_why(address: str, why: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "example.com/hook",
        "http:///nohost",
        "https://user:pw@example.com/",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "",
        42,
    ],
)
def test_malformed_urls_are_refused(url: Any) -> None:
    with pytest.raises(TargetRefused) as refused:
        parse_target(url)
    assert refused.value.details["fields"][0]["field"] == "webhook_url"


def _resolver(*answers: str) -> Any:
    """A resolver answering each lookup with the next address (the last one repeating)."""
    queue = list(answers)
    asked: list[str] = []

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


def test_a_name_resolving_to_loopback_is_refused() -> None:
    guard = TargetGuard(AllowList(), _resolver("127.0.0.1"))
    with pytest.raises(TargetRefused, match="loopback"):
        guard.check("https://hooks.example.com/acgs")


def test_every_address_of_a_name_is_checked() -> None:
    def two(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
        ]

    with pytest.raises(TargetRefused, match="private"):
        TargetGuard(AllowList(), two).check("https://hooks.example.com/acgs")


def test_the_address_is_checked_at_each_delivery_and_is_the_one_connected_to() -> None:
    """DNS rebinding: public at registration, loopback at delivery: refused at delivery."""
    resolve = _resolver("93.184.215.14", "93.184.215.14", "127.0.0.1")
    guard = TargetGuard(AllowList(), resolve)
    target = guard.check("https://hooks.example.com/acgs")
    assert guard.address(target) == ipaddress.ip_address("93.184.215.14")
    with pytest.raises(TargetRefused, match="loopback"):
        guard.address(target)
    assert resolve.asked == ["hooks.example.com"] * 3


def test_metadata_names_are_refused_before_any_lookup() -> None:
    resolve = _resolver("93.184.215.14")
    guard = TargetGuard(AllowList(), resolve)
    with pytest.raises(TargetRefused, match="metadata"):
        guard.check("http://metadata.google.internal/computeMetadata/v1/")
    assert resolve.asked == []


def test_an_unresolvable_name_is_refused() -> None:
    def nothing(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "unknown")

    with pytest.raises(TargetRefused, match="does not resolve"):
        TargetGuard(AllowList(), nothing).check("https://nowhere.example/")


def test_the_allow_list_permits_networks_and_names_only() -> None:
    allow = AllowList.parse(["127.0.0.1", "10.20.0.0/16", "[::1]", "hooks.internal"])
    guard = TargetGuard(allow, _resolver("10.99.0.1"))
    assert guard.check("http://127.0.0.1:8080/x").port == 8080
    assert guard.check("http://[::1]/x").host == "::1"
    assert guard.check("http://10.20.3.4/x").host == "10.20.3.4"
    assert guard.check("http://hooks.internal/x").host == "hooks.internal"  # 10.99.0.1
    with pytest.raises(TargetRefused):
        guard.check("http://127.0.0.2/x")
    with pytest.raises(TargetRefused):
        guard.check("http://10.21.0.1/x")
    with pytest.raises(TargetRefused):
        guard.check("http://other.internal/x")  # resolves to 10.99.0.1, not allowed


def test_a_malformed_allow_list_entry_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        AllowList.parse(["10.0.0.0/33"])
