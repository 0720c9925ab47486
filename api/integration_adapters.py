"""The one registry of warm per-integration adapters (an LDAP pool, a SAML service provider, an
OIDC relying party): built from the integration's configuration with its secrets opened, kept
while the integration's version stays the same, and rebuilt (the old one closed) when it changes.

Which integration a caller gets (and whether it is still enabled, and its version) is looked up
again at most every `recheck_seconds` (5 s): a changed, disabled or archived integration is in use
within that time. A lookup that finds nothing is remembered as long, so a flood of sign-ins
naming an unknown integration costs one read of the event store per 5 s. A build that failed (a
configuration that cannot serve now, e.g. an IdP whose metadata could not be read) is not kept:
it is tried again at the next check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Hashable, Mapping
from typing import Any, Generic, TypeVar
from uuid import UUID

from api.bootstrap import System
from domain.errors import NotFound
from domain.integration.aggregate import Integration

RECHECK_SECONDS = 5.0
A = TypeVar("A")


class IntegrationAdapters(Generic[A]):
    def __init__(
        self,
        system: System,
        kinds: Collection[str],
        build: Callable[[Integration, Mapping[str, Any], Hashable], A | None],
        *,
        close: Callable[[A], None] = lambda _: None,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`build(integration, clear_config, variant)` makes the adapter (None: the configuration
        cannot serve); `variant` tells apart adapters of one integration (e.g. the base URL a SAML
        service provider answers on)."""
        self._system = system
        self._kinds = frozenset(kinds)
        self._build = build
        self._close = close
        self._recheck = recheck_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._built: dict[tuple[UUID, Hashable], tuple[int, A | None]] = {}
        self._recent: dict[tuple[UUID, UUID, Hashable], tuple[float, Integration | None, Any]] = {}

    def get(
        self, tenant_id: UUID, integration_id: UUID, variant: Hashable = None
    ) -> tuple[Integration, A] | None:
        """The integration (as of the last check) and its adapter; None when the tenant has no
        enabled integration of these kinds with that id, or its configuration cannot serve."""
        key = (tenant_id, integration_id, variant)
        recent = self._recent.get(key)
        if recent is not None and self._clock() - recent[0] < self._recheck:
            integration, adapter = recent[1], recent[2]
        else:
            checked_at = self._clock()
            integration, adapter = self._lookup(tenant_id, integration_id, variant)
            self._recent[key] = (checked_at, integration, adapter)
        return None if integration is None or adapter is None else (integration, adapter)

    def _lookup(
        self, tenant_id: UUID, integration_id: UUID, variant: Hashable
    ) -> tuple[Integration | None, A | None]:
        commands = self._system.integrations
        if commands is None:
            return None, None
        try:
            integration = commands.load(tenant_id, integration_id)
        except NotFound:
            return None, None
        if integration.integration_type.value not in self._kinds or not integration.enabled:
            return None, None
        key = (integration.id, variant)
        with self._lock:
            cached = self._built.get(key)
            if cached is not None and cached[0] == integration.version:
                return integration, cached[1]
            built = self._build(integration, integration.clear_config(commands.sealer), variant)
            if built is None:  # cannot serve now (an IdP's metadata unreachable): tried again
                self._built.pop(key, None)  # at the next check, not kept for this version
            else:
                self._built[key] = (integration.version, built)
        if cached is not None and cached[1] is not None:
            self._close(cached[1])
        return integration, built

    def close(self) -> None:
        with self._lock:
            built = [adapter for _, adapter in self._built.values() if adapter is not None]
            self._built.clear()
            self._recent.clear()
        for adapter in built:
            self._close(adapter)
