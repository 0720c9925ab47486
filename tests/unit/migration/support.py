"""A small job kind for the runner's and the commands' unit tests: `items` items, one a batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from commands.migration_kinds import BatchOutcome, FailedItem, JobContext, JobSource


@dataclass
class CountingKind:
    name: str = "counting"
    items: int = 3
    secret_parameters: frozenset[str] = frozenset()
    after_batch: Callable[[int], object] = field(default=lambda _: None)
    contexts: list[JobContext] = field(default_factory=list)

    def validate(self, parameters: Mapping[str, Any], source: JobSource | None) -> dict[str, Any]:
        return dict(parameters)

    def open(self, job: JobContext) -> _Cursor:
        self.contexts.append(job)
        start = int((job.checkpoint or {}).get("next", 0))
        return _Cursor(self, start)

    def report(self, job: JobContext, summary: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"counted": summary.get("done", 0)}


class _Cursor:
    def __init__(self, kind: CountingKind, start: int) -> None:
        self.kind = kind
        self.total = kind.items
        self.done = start
        self.closed = False

    def next_batch(self) -> BatchOutcome | None:
        if self.done >= self.total:
            return None
        self.done += 1
        failed = (FailedItem(f"item {self.done}", "odd", "make it even"),) if self.done % 2 else ()
        outcome = BatchOutcome(self.done, {"done": self.done}, {"next": self.done}, failed)
        self.kind.after_batch(self.done)
        return outcome

    def close(self) -> None:
        self.closed = True
