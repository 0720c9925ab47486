"""The `sinks` worker: keeps one supervised worker per enabled SIEM integration (named after its
follower, `sink_<id>`), starting one when a sink is created or enabled, stopping it when the sink
is disabled or deleted, and restarting it when its configuration changes (a new version of the
integration). It looks every `refresh_seconds`; each sink worker follows the log on its own.
The `warehouses` worker is the same fleet over the data-warehouse integrations (`name`,
`name_of`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

from domain.sinks import follower_name
from infra.postgres.sink_store import ConfiguredSink
from infra.supervisor import Supervisor, Worker

log = logging.getLogger(__name__)
REFRESH_SECONDS = 2.0


class Configured(Protocol):
    def configured(self) -> Sequence[ConfiguredSink]: ...

    def close(self) -> None: ...


class SinkFleet:
    def __init__(
        self,
        store: Configured,
        supervisor: Callable[[], Supervisor | None],
        worker_of: Callable[[UUID, UUID], Worker],
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        name: str = "sinks",
        name_of: Callable[[UUID], str] = follower_name,
    ) -> None:
        self.name = name
        self._name_of = name_of
        self._store = store
        self._supervisor = supervisor
        self._worker_of = worker_of
        self.refresh_seconds = refresh_seconds
        self.running: dict[str, int] = {}  # worker name -> integration version it runs

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.reconcile()
                stop.wait(self.refresh_seconds)
        finally:
            self.stop_all()

    def reconcile(self) -> None:
        supervisor = self._supervisor()
        if supervisor is None:
            return
        wanted: dict[str, ConfiguredSink] = {
            self._name_of(s.integration_id): s for s in self._store.configured()
        }
        for name, version in list(self.running.items()):
            if name not in wanted or wanted[name].version != version:
                supervisor.remove(name)
                del self.running[name]
        for name, sink in wanted.items():
            if name in self.running:
                continue
            try:
                worker = self._worker_of(sink.tenant_id, sink.integration_id)
            except Exception:  # a sink that cannot be built must not stop the others
                log.exception("sink %s cannot start", name)
                continue
            supervisor.add(worker)
            self.running[name] = sink.version

    def stop_all(self) -> None:
        supervisor = self._supervisor()
        for name in list(self.running):
            if supervisor is not None:
                supervisor.remove(name)
            del self.running[name]

    def close(self) -> None:
        self._store.close()
