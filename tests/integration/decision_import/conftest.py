"""The decision import kind wired to the real database, and a driver that runs a job through the
port the way the runner does (validate, open, next_batch ... until None, report)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from api.bootstrap import System
from commands.decision_import.kind import DecisionImportKind
from commands.migration_kinds import BatchOutcome, FailedItem, JobContext, JobSource
from infra.postgres.decision_import_store import PostgresDecisionImportStore
from infra.postgres.legacy_decisions import PostgresQuerySource

HASH = "cdd01ef066bc6cf2"
HEADER = [
    "decision_id",
    "timestamp",
    "principal",
    "action",
    "resource",
    "context",
    "decision",
    "reason",
    "policy_id",
    "latency_ms",
]


@pytest.fixture
def kind(system: System) -> DecisionImportKind:
    return DecisionImportKind(
        lambda: PostgresDecisionImportStore(system.projector_conninfo), PostgresQuerySource, HASH
    )


def row(
    number: int, *, decision: str = "allow", decision_id: str | None = None, **changes: str
) -> dict[str, str]:
    """One legacy decision as CSV text (a distinct request for each `number`)."""
    fields = {
        "decision_id": f"D-{number}" if decision_id is None else decision_id,
        "timestamp": f"2025-11-{1 + number % 28:02d}T10:{number % 60:02d}:00Z",
        "principal": f"user{number}@example.com",
        "action": "read" if number % 2 else "write",
        "resource": f"documents/{number}",
        "context": json.dumps({"department": "legal", "n": number}),
        "decision": decision,
        "reason": "matched rule 7",
        "policy_id": "legacy-docs",
        "latency_ms": "1.25",
    }
    fields.update(changes)
    return fields


def csv_text(rows: Iterable[Mapping[str, str]], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_source(tmp_path: Path, name: str, text: str) -> JobSource:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return JobSource(path=path, filename=name)


def job(
    kind: DecisionImportKind,
    parameters: Mapping[str, Any],
    source: JobSource | None,
    tmp_path: Path,
    *,
    tenant_id: UUID | None = None,
    job_id: UUID | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> JobContext:
    """A job context as the runner makes it: the parameters are those `validate` kept."""
    return JobContext(
        tenant_id=tenant_id or uuid4(),
        job_id=job_id or uuid4(),
        kind=kind.name,
        parameters=kind.validate(parameters, source),
        source=source,
        requested_by="importer@example.com",
        checkpoint=checkpoint,
        work_dir=tmp_path,
    )


@dataclass
class Run:
    outcomes: list[BatchOutcome] = field(default_factory=list)
    total: int = 0

    @property
    def last(self) -> BatchOutcome:
        return self.outcomes[-1]

    @property
    def failed(self) -> list[FailedItem]:
        return [item for outcome in self.outcomes for item in outcome.failed]


def run(kind: DecisionImportKind, context: JobContext, *, batches: int | None = None) -> Run:
    """Open a cursor and run it to the end (or for `batches` batches), then close it."""
    result = Run()
    cursor = kind.open(context)
    result.total = cursor.total
    try:
        while batches is None or len(result.outcomes) < batches:
            outcome = cursor.next_batch()
            if outcome is None:
                break
            result.outcomes.append(outcome)
    finally:
        cursor.close()
    return result


def imported(conn: psycopg.Connection[Any], tenant_id: UUID) -> list[dict[str, Any]]:
    """The tenant's imported rows, oldest first, as the decision log keeps them."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT * FROM decision_logs WHERE tenant_id = %s AND origin = 'imported' "
            "ORDER BY decided_at, legacy_decision_id",
            [tenant_id],
        ).fetchall()


Driver = Callable[..., Run]
