"""The next batch is read and checked while the database writes this one: a source that breaks
in the batch read ahead (a legacy database that stops answering) fails the job at that batch,
after every earlier batch committed and was reported, exactly as if it were read in turn."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

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
