"""The decision log, written off the request path: decisions are queued by the request and
written in batches by a supervised worker; denied decisions are also audited (`governance`).

Counters make a silent loss visible: `made` (handed to the log), `logged` (written), `dropped`
(refused because the queue was full: the writer could not keep up, or the database was away),
`audit_failures` (denied decisions whose audit entry could not be saved). A batch that failed to
write is kept and written first when the worker is restarted; rows are written with their
decision id, so writing a batch twice adds nothing.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from commands.application import GovernanceApplication
from commands.decisions import DecisionRecord
from domain.audit import AuditEntry
from domain.errors import DomainError
from domain.events import EventMeta

log = logging.getLogger(__name__)
DEFAULT_CAPACITY = 100_000
DEFAULT_BATCH = 1000
FLUSH_SECONDS = 0.2


class DecisionLogStore(Protocol):
    """Port: appends decision records (infra.postgres.decision_log_store)."""

    def insert(self, records: Sequence[DecisionRecord]) -> None: ...

    def close(self) -> None: ...


class DecisionRecorder:
    def __init__(
        self,
        store: DecisionLogStore,
        app: GovernanceApplication,
        *,
        capacity: int = DEFAULT_CAPACITY,
        batch_size: int = DEFAULT_BATCH,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._store = store
        self._app = app
        self._queue: deque[DecisionRecord] = deque()
        self.capacity = capacity
        self._pending: list[DecisionRecord] = []
        self._write_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.made = 0
        self.logged = 0
        self.dropped = 0
        self.audit_failures = 0

    def record(self, entry: DecisionRecord) -> None:
        """Queue one decision (never blocks: a full queue drops it, and counts it)."""
        with self._count_lock:
            self.made += 1
            if len(self._queue) < self.capacity:
                self._queue.append(entry)
            else:
                self.dropped += 1

    def close(self) -> None:
        """Release the store's connection (decisions still queued stay queued)."""
        self._store.close()

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._pending)

    def run(self, stop: threading.Event) -> None:
        """The worker: write what has been queued, then wait `flush_seconds` (so a busy API
        writes a few large batches rather than many small ones), until `stop` is set; then
        write what is left."""
        while not stop.is_set():
            if self._write_next() < self.batch_size:
                stop.wait(self.flush_seconds)
        self.flush()

    def flush(self) -> int:
        """Write everything queued now; returns how many decisions were written."""
        written = 0
        while True:
            count = self._write_next()
            if not count:
                return written
            written += count

    def _write_next(self) -> int:
        with self._write_lock:
            batch = self._pending or self._take()
            if not batch:
                return 0
            self._pending = batch
            self._store.insert(batch)  # raises: kept in _pending, retried after the restart
            self._pending = []
            self.logged += len(batch)
        self._audit_denied(batch)
        return len(batch)

    def _take(self) -> list[DecisionRecord]:
        batch: list[DecisionRecord] = []
        take = self._queue.popleft
        try:
            while len(batch) < self.batch_size:
                batch.append(take())
        except IndexError:
            pass
        return batch

    def _audit_denied(self, batch: Sequence[DecisionRecord]) -> None:
        by_tenant: dict[UUID, list[AuditEntry]] = defaultdict(list)
        for entry in batch:
            if entry.decision.allow:
                continue
            policy = entry.policy
            by_tenant[entry.tenant_id].append(
                AuditEntry.record(
                    entry_id=entry.decision_id,
                    category="governance",
                    action="policy_decision",
                    result="denied",
                    target_resource=f"policy/{policy.policy_key}",
                    details={
                        "decision_id": str(entry.decision_id),
                        "policy_id": policy.policy_key,
                        "policy_version": policy.version,
                        "system_wide": policy.system_wide,
                        "deny": sorted(entry.decision.deny),
                        "input_sha256": entry.input_sha256,
                    },
                    meta=EventMeta(entry.tenant_id, entry.actor, entry.constitutional_hash),
                )
            )
        for tenant_id, entries in by_tenant.items():
            try:
                self._app.save_for(tenant_id, *entries)
            except DomainError as failure:
                self.audit_failures += len(entries)
                log.warning("denied decisions of a tenant not audited: %s", failure.code)
