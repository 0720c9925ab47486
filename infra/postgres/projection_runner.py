"""Runs a projection over the notification log, exactly once: the first delivery mode of
`LogFollower` (each batch applied in the transaction that moves the projection's position)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from eventsourcing.persistence import Mapper, StoredEvent

from infra import tracing
from infra.postgres.follower import LogFollower, LogRow, Projection


class ProjectionRunner:
    def __init__(
        self,
        conninfo: str,
        projection: Projection,
        mapper: Mapper[Any],
        *,
        batch_size: int = 500,
        on_batch: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.projection = projection
        self.mapper = mapper
        self.on_batch = on_batch  # (projection name, events applied, lag seconds of the last one)
        self.follower = LogFollower(conninfo, projection.name, batch_size=batch_size)

    @property
    def name(self) -> str:
        return self.projection.name

    def close(self) -> None:
        self.follower.close()

    def position(self) -> int:
        return self.follower.position()

    def _apply(self, cur: psycopg.Cursor[Any], rows: list[LogRow]) -> None:
        to_domain_event = self.mapper.to_domain_event
        apply = self.projection.apply
        for _, originator_id, version, topic, state, _, _ in rows:
            event = to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))
            parent = getattr(event, "meta", None) or {}
            if tracing.sampled(parent.get("trace_parent")):  # a span only in sampled traces
                with tracing.continued(
                    f"projection.apply {self.name}",
                    parent["trace_parent"],
                    attributes={tracing.TENANT: str(parent.get("tenant_id"))},
                ):
                    apply(cur, event)
            else:
                apply(cur, event)

    def step(self) -> int:
        """Apply the next batch; return how many events were applied."""
        rows = self.follower.apply_next(self._apply)
        if rows and self.on_batch is not None:
            lag = (datetime.now(UTC) - rows[-1][-1]).total_seconds()  # recorded_at
            self.on_batch(self.name, len(rows), lag)
        return len(rows)

    def catch_up(self) -> int:
        """Apply everything recorded so far; return the number of events applied."""
        total = 0
        while applied := self.step():
            total += applied
        return total

    def reset(self) -> None:
        """Empty the read model and rewind to the start of the log (for a replay)."""
        self.follower.reset(self.projection.tables)

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Follow the log until `stop` is set; survives database restarts."""
        self.follower.follow(stop, self.catch_up, poll_seconds=poll_seconds)
