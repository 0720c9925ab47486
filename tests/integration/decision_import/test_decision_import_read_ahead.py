"""The next batch is read and checked while the database writes this one: a source that breaks
in the batch read ahead (a legacy database that stops answering) fails the job at that batch,
after every earlier batch committed and was reported, exactly as if it were read in turn."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from api.bootstrap import System
from commands.decision_import.kind import DecisionImportKind, ImportCursor
from commands.decision_import.parameters import import_parameters
from commands.decision_import.sources import CsvSource, Record
from domain.decision_import.errors import SourceUnreadable
from infra.postgres.decision_import_store import PostgresDecisionImportStore
from tests.integration.decision_import.conftest import (
    HASH,
    csv_text,
    imported,
    job,
    row,
    run,
    write_source,
)


class BreaksAt(CsvSource):
    """A CSV whose reading stops with an error at one record, as a dropped connection would."""

    def __init__(self, path: Path, at: int) -> None:
        super().__init__(path, {})
        self.at = at

    def records(self, skip: int) -> Iterator[Record]:
        for number, fields in super().records(skip):
            if number == self.at:
                raise SourceUnreadable(f"the source stopped at record {number}")
            yield number, fields


def test_a_source_breaking_in_the_batch_read_ahead_fails_the_job_at_that_batch(
    kind: DecisionImportKind, system: System, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    rows = [row(n) for n in range(1, 41)]
    rows[4] = row(5, decision="maybe")
    source = write_source(tmp_path, "breaks.csv", csv_text(rows))
    context = job(kind, {"batch_size": 10}, source, tmp_path)
    parameters, _ = import_parameters(context.parameters, source)
    assert parameters is not None
    store = PostgresDecisionImportStore(system.projector_conninfo)
    cursor = ImportCursor(context, parameters, BreaksAt(source.path, 35), store, HASH)
    try:
        outcomes = [cursor.next_batch() for _ in range(3)]  # the fourth is read meanwhile
        assert [o.processed for o in outcomes if o is not None] == [10, 20, 30]
        assert [f.item for o in outcomes if o is not None for f in o.failed] == ["row 5"]
        assert len(imported(admin_conn, context.tenant_id)) == 29
        with pytest.raises(SourceUnreadable) as caught:
            cursor.next_batch()
        assert caught.value.message == "the source stopped at record 35"
    finally:
        cursor.close()
    assert len(imported(admin_conn, context.tenant_id)) == 29

    # The source answers again: the job goes on after row 30.
    resumed = kind.open(replace(context, checkpoint={"rows_through": 30}))
    try:
        outcome = resumed.next_batch()
        assert outcome is not None
        assert outcome.processed == 40
    finally:
        resumed.close()
    assert len(imported(admin_conn, context.tenant_id)) == 39


class Dies(Exception):
    pass


class Announces(CsvSource):
    """A CSV that says when its reader reaches a given record."""

    def __init__(self, path: Path, at: int) -> None:
        super().__init__(path, {})
        self.at = at
        self.read = threading.Event()

    def records(self, skip: int) -> Iterator[Record]:
        for number, fields in super().records(skip):
            if number == self.at:
                self.read.set()
            yield number, fields


def test_a_batch_that_dies_after_the_next_was_read_ahead_is_redone_and_nothing_counts_twice(
    kind: DecisionImportKind, system: System, tmp_path: Path, admin_conn: psycopg.Connection[Any]
) -> None:
    rows = [row(n) for n in range(1, 41)]
    rows[4] = row(5, decision="maybe")  # invalid
    rows[11] = row(3)  # a repeat of row 3
    rows[22] = row(21)  # a repeat within the third batch
    rows[26] = row(6, decision="deny")  # a conflict with row 6
    rows[34] = row(24, decision="deny")  # in the batch read ahead: a conflict with row 24
    source = write_source(tmp_path, "dies.csv", csv_text(rows))
    context = job(kind, {"batch_size": 10}, source, tmp_path)
    parameters, _ = import_parameters(context.parameters, source)
    assert parameters is not None
    announces = Announces(source.path, 40)  # the fourth batch, read while the third is written

    class DiesBeforeTheThirdCommits(PostgresDecisionImportStore):
        @contextmanager
        def batch(self, tenant_id: UUID, job_id: UUID, rows_from: int) -> Iterator[Any]:
            with super().batch(tenant_id, job_id, rows_from) as tx:
                if rows_from == 20:
                    real_settle = tx.settle

                    def settle_then_die() -> Mapping[str, str]:
                        real_settle()  # the third batch's rows are in its transaction
                        assert announces.read.wait(30)  # and the fourth batch is read ahead
                        raise Dies

                    tx.settle = settle_then_die  # type: ignore[method-assign]
                yield tx

    store = DiesBeforeTheThirdCommits(system.projector_conninfo)
    cursor = ImportCursor(context, parameters, announces, store, HASH)
    try:
        outcomes = [cursor.next_batch() for _ in range(2)]
        with pytest.raises(Dies):
            cursor.next_batch()
    finally:
        cursor.close()
    assert [o.processed for o in outcomes if o is not None] == [10, 20]
    assert len(imported(admin_conn, context.tenant_id)) == 18  # row 5 invalid, row 12 a repeat
    with psycopg.connect(system.projector_conninfo) as conn:  # no lock left behind
        assert conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ).fetchone() == (0,)

    last = outcomes[-1]
    assert last is not None
    resumed = run(kind, replace(context, checkpoint=last.checkpoint))
    reference = job(kind, {"batch_size": 10}, source, tmp_path)
    whole = run(kind, reference)  # the same file, imported without a break, for another tenant

    assert resumed.last.summary == whole.last.summary
    assert whole.last.summary["imported"] == 35
    assert (whole.last.summary["skipped_duplicates"], whole.last.summary["conflicts"]) == (2, 2)
    failed = [f.item for o in outcomes if o is not None for f in o.failed] + [
        f.item for f in resumed.failed
    ]
    assert failed == [f.item for f in whole.failed] == ["row 5", "row 27", "row 35"]

    def kept(tenant_id: UUID) -> list[tuple[Any, ...]]:
        return [
            (r["legacy_decision_id"], r["content_sha256"], r["decided_at"])
            for r in imported(admin_conn, tenant_id)
        ]

    assert kept(context.tenant_id) == kept(reference.tenant_id)
