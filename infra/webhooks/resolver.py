"""Resolves a webhook target and checks every address it resolves to (`domain.webhooks.targets`).
The caller then connects to the address returned, never to the name, so a second lookup cannot
hand it another address (DNS rebinding)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from domain.webhooks.targets import (
    AllowList,
    IPAddress,
    Target,
    TargetRefused,
    check_address,
    check_host,
    parse_target,
)

Resolve = Callable[..., list[tuple[Any, ...]]]


class TargetGuard:
    def __init__(self, allow: AllowList, resolve: Resolve = socket.getaddrinfo) -> None:
        self.allow = allow
        self.resolve = resolve

    def check(self, url: object, field: str = "webhook_url") -> Target:
        """The URL's target if it may be called (every address of its name checked);
        TargetRefused otherwise. Used at registration and on each change of the URL."""
        target = parse_target(url, field)
        self.address(target, field)
        return target

    def address(self, target: Target, field: str = "webhook_url") -> IPAddress:
        """The address to connect to: the literal, or the first address the name resolves to,
        once every one of them passed the check."""
        check_host(target, self.allow, field)
        literal = target.literal
        if literal is not None:
            return literal
        try:
            found = self.resolve(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise TargetRefused.field(field, f"host {target.host} does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
        if not addresses:
            raise TargetRefused.field(field, f"host {target.host} does not resolve")
        if not self.allow.permits_host(target.host):
            for address in addresses:
                check_address(address, self.allow, field)
        return addresses[0]
