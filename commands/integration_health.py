"""The integration health checker, a supervised background worker: every `interval_seconds`
(60 s) it tests every enabled integration (through the same breaker-guarded probe as the test
endpoint), records each outcome, and crypto-shreds the secrets of archived integrations whose
retention has passed. One integration's failure never stops the round."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from commands.integrations import IntegrationCommands
from domain.errors import DomainError
from domain.secrets import SecretUnreadable

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 60.0


class IntegrationsToCheck(Protocol):
    def due(self) -> list[tuple[UUID, UUID]]: ...

    def expired_archives(self, now: datetime) -> list[tuple[UUID, UUID]]: ...


class IntegrationHealthChecker:
    name = "integration_health"

    def __init__(
        self,
        commands: IntegrationCommands,
        integrations: IntegrationsToCheck,
        *,
        interval_seconds: float = INTERVAL_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._commands = commands
        self._integrations = integrations
        self.interval_seconds = interval_seconds
        self._now = now

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.check_all(stop)
            stop.wait(self.interval_seconds)

    def check_all(self, stop: threading.Event | None = None) -> int:
        """One round; returns how many integrations were checked."""
        checked = 0
        for tenant_id, integration_id in self._integrations.due():
            if stop is not None and stop.is_set():
                break
            try:
                self._commands.check_health(tenant_id, integration_id)
                checked += 1
            except (DomainError, SecretUnreadable) as exc:
                log.warning("health check of integration %s skipped: %s", integration_id, exc)
        for tenant_id, integration_id in self._integrations.expired_archives(self._now()):
            try:
                self._commands.shred_expired(tenant_id, integration_id, self._now())
            except DomainError as exc:
                log.warning("shredding integration %s failed: %s", integration_id, exc)
        return checked
