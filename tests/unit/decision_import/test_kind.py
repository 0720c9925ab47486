"""The import kind's bookkeeping on an in-memory store: repeats and conflicts within a batch and
against earlier imports, a resume that first reports the batch the runner missed, and the
result summary."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.decision_import.kind import DecisionImportKind
from commands.migration_kinds import JobContext, JobSource
from domain.decision_import.record import ImportedDecision
from domain.errors import ConcurrentModification

HEADER = "decision_id,timestamp,principal,action,resource,decision,reason\n"


class MemoryStore:
    """The store port in memory: one dict of decisions per tenant, one progress per job."""

    def __init__(self) -> None:
        self.decisions: dict[UUID, dict[str, ImportedDecision]] = {}
        self.progress_rows: dict[UUID, tuple[int, dict[str, Any]]] = {}
        self.encodings: dict[bytes, Sequence[ImportedDecision]] = {}  # what each chunk holds

    def encoded(self, tenant_id: UUID, rows: Sequence[ImportedDecision]) -> bytes:
        chunk = f"{tenant_id} {len(self.encodings)}".encode()
        self.encodings[chunk] = rows
        return chunk

    def in_log_order(self, chunks: Sequence[bytes]) -> list[bytes]:
        return list(chunks)

    def progress(self, tenant_id: UUID, job_id: UUID) -> tuple[int, dict[str, Any]] | None:
        return self.progress_rows.get(job_id)

    @contextmanager
    def batch(self, tenant_id: UUID, job_id: UUID, rows_from: int) -> Iterator[Any]:
        if self.progress_rows.get(job_id, (0, {}))[0] != rows_from:
            raise ConcurrentModification("moved on")
        store, staged, saved = self, [], []

        class Batch:
            def stage(self, chunks: Iterable[bytes]) -> None:
                staged.extend(row for chunk in chunks for row in store.encodings.pop(chunk))

            def settle(self) -> Mapping[str, str]:
                kept = store.decisions.setdefault(tenant_id, {})
                existing = {r.dedup_key: kept[r.dedup_key].content_sha256 for r in staged
                            if r.dedup_key in kept}  # fmt: skip
                kept.update({r.dedup_key: r for r in staged if r.dedup_key not in existing})
                return existing

            def save_progress(self, rows_through: int, summary: Mapping[str, Any]) -> None:
                saved.append((rows_through, dict(summary)))

        yield Batch()
        self.progress_rows[job_id] = saved[-1]

    def close(self) -> None:
        return None


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def kind(store: MemoryStore) -> DecisionImportKind:
    def no_queries(*args: object) -> Any:
        raise AssertionError("no query source in these tests")

    return DecisionImportKind(lambda: store, no_queries)


def _job(
    kind: DecisionImportKind, tmp_path: Path, lines: list[str], **overrides: Any
) -> JobContext:
    path = tmp_path / f"{uuid4().hex}.csv"
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    source = JobSource(path=path, filename=path.name)
    values: dict[str, Any] = {
        "tenant_id": uuid4(),
        "job_id": uuid4(),
        "kind": kind.name,
        "parameters": kind.validate({"batch_size": 3}, source),
        "source": source,
        "requested_by": "tester",
        "checkpoint": None,
        "work_dir": tmp_path,
    }
    values.update(overrides)
    return JobContext(**values)


def _line(n: int, decision: str = "allow", reason: str = "r") -> str:
    return f"D-{n},2025-01-0{n}T00:00:00Z,user{n},read,doc/{n},{decision},{reason}"


def test_a_repeat_of_a_row_that_conflicts_with_an_earlier_import_conflicts_too(
    kind: DecisionImportKind, store: MemoryStore, tmp_path: Path
) -> None:
    first = _job(kind, tmp_path, [_line(1)])
    cursor = kind.open(first)
    assert cursor.next_batch() is not None
    second = _job(
        kind, tmp_path, [_line(1, "deny"), _line(1, "deny"), _line(2)], tenant_id=first.tenant_id
    )
    cursor = kind.open(second)
    outcome = cursor.next_batch()
    assert outcome is not None
    assert [f.item for f in outcome.failed] == ["row 1", "row 2"]
    assert {k: outcome.summary[k] for k in ("imported", "conflicts", "skipped_duplicates")} == {
        "imported": 1,
        "conflicts": 2,
        "skipped_duplicates": 0,
    }
    assert cursor.next_batch() is None


def test_a_resumed_job_first_reports_the_batch_the_runner_missed(
    kind: DecisionImportKind, tmp_path: Path
) -> None:
    context = _job(kind, tmp_path, [_line(n) for n in range(1, 8)])
    cursor = kind.open(context)
    one = cursor.next_batch()
    two = cursor.next_batch()
    assert one is not None
    assert two is not None
    # The worker died after batch two committed; the runner had recorded batch one only.
    resumed = kind.open(JobContext(**{**context.__dict__, "checkpoint": one.checkpoint}))
    assert resumed.total == 7
    caught_up = resumed.next_batch()
    assert caught_up is not None
    assert (caught_up.processed, caught_up.summary, caught_up.failed) == (6, two.summary, ())
    last = resumed.next_batch()
    assert last is not None
    assert (last.processed, last.summary["imported"]) == (7, 7)
    assert resumed.next_batch() is None
    up_to_date = kind.open(JobContext(**{**context.__dict__, "checkpoint": last.checkpoint}))
    assert up_to_date.next_batch() is None  # nothing missed, nothing left


def test_the_report_is_the_cumulative_counts_and_the_listed_conflicts(
    kind: DecisionImportKind, tmp_path: Path
) -> None:
    context = _job(kind, tmp_path, [_line(1), _line(1, reason="other"), "x,y"])
    cursor = kind.open(context)
    outcome = cursor.next_batch()
    assert outcome is not None
    report = kind.report(context, outcome.summary)
    assert {k: v for k, v in report.items() if k != "conflicts_listed"} == {
        "rows": 3,
        "imported": 1,
        "skipped_duplicates": 0,
        "conflicts": 1,
        "invalid_rows": 1,
        "constitutional_hash": "cdd01ef066bc6cf2",
    }
    [listed] = report["conflicts_listed"]
    assert (listed["row"], listed["decision_id"], listed["conflicts_with"]) == (2, "D-1", "row 1")


def test_a_batch_read_ahead_keeps_nothing_the_garbage_collector_walks(
    kind: DecisionImportKind, tmp_path: Path
) -> None:
    path = tmp_path / "nested.csv"
    rows = "".join(
        f'D-{n},2025-01-01T00:00:00Z,user{n},read,doc/{n},allow,"{{""tags"": [{n}]}}"\n'
        for n in range(1, 7)
    )
    path.write_text(HEADER.replace("reason", "context") + rows, encoding="utf-8")
    context = _job(kind, tmp_path, [])
    context = JobContext(**{**context.__dict__, "source": JobSource(path=path, filename="n.csv")})
    cursor = kind.open(context)
    assert cursor.next_batch() is not None  # the second batch is now read ahead
    assert cursor._ahead is not None
    ahead = cursor._ahead.result()
    assert ahead is not None
    assert len(ahead.first) == 3
    gc.collect()  # what holds only atomic values is untracked here; a decision (its context) is not
    assert not any(gc.is_tracked(kept) for kept in ahead.first.values())
    cursor.close()
