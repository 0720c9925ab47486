"""`DecisionImportKind`: the `decision_log_import` job kind (see `commands.migration_kinds`).

Each batch: the records are checked (a bad one is a failed item naming its row and every bad
field, and the import goes on); a key seen earlier in the batch, or imported before for the
tenant (by this job or another), is a repeat when the content is the same (skipped, counted)
and a conflict otherwise (counted, listed, not imported); the rest are copied into the decision
log. The rows and the job's progress commit together, and `open` resumes from that progress, so
a batch is never imported twice and never counted twice.

The next batch is prepared while the database writes the previous one. A reader thread reads,
checks, keys, digests and encodes a whole batch before its transaction begins (the transaction,
and its lock on the tenant's imports, lasts only as long as the database's own work); the
cursor's thread then opens the transaction, sends the encoded rows, and only then sets the reader
on the next batch, while the database adds the rows to the log and the batch commits. The
cursor's thread sends the rows while the reader is idle and waits on the database while it
works: the two threads seldom want Python's global lock at once, so the database does not sit
waiting for the cursor's thread to get it back. A batch read ahead but not committed is dropped
with the cursor, and a new cursor reads it again from the job's committed progress.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commands.decision_import.parameters import (
    SECRET_PARAMETERS,
    ImportParameters,
    import_parameters,
)
from commands.decision_import.sources import (
    CsvSource,
    JsonLinesSource,
    QuerySource,
    Record,
    RecordSource,
)
from commands.decision_import.store import ImportedDecisionStore
from commands.migration_kinds import BatchOutcome, FailedItem, JobContext, JobSource
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.decision_import.errors import SourceUnreadable
from domain.decision_import.fields import missing_fields, renamed
from domain.decision_import.record import ImportedDecision, InvalidRow, imported_decision
from domain.errors import ValidationFailed

QuerySourceFactory = Callable[[str, str, Mapping[str, str]], QuerySource]
CONFLICTS_LISTED = 20
_BATCH_FAILURES = "batch_failures"  # kept with a batch's progress, for a catch-up after a crash
CHUNK_ROWS = 100  # rows checked, then encoded, at a time (only its decisions stay alive)
COUNTS = ("rows", "imported", "skipped_duplicates", "conflicts", "invalid_rows")
UNREADABLE_ROW = "Fix the record's format (quoting, field count, JSON) and import the row again."
INVALID_ROW = "Correct the named fields and import the row again."
CONFLICT = (
    "Another record has this key with different content: decide which one is right, then "
    "give the other its own decision_id (or drop it) and import it again."
)


class DecisionImportKind:
    name = "decision_log_import"
    secret_parameters = SECRET_PARAMETERS

    def __init__(
        self,
        store: Callable[[], ImportedDecisionStore],
        query_source: QuerySourceFactory,
        constitutional_hash: str = DEFAULT_CONSTITUTIONAL_HASH,
    ) -> None:
        self._store = store
        self._query_source = query_source
        self.constitutional_hash = constitutional_hash

    def validate(self, parameters: Mapping[str, Any], source: JobSource | None) -> dict[str, Any]:
        checked, problems = import_parameters(parameters, source)
        if checked is not None:
            problems = self._source_problems(checked, source)
        if problems or checked is None:
            raise ValidationFailed.listing(problems)
        return checked.as_dict()

    def open(self, job: JobContext) -> ImportCursor:
        checked, problems = import_parameters(job.parameters, job.source)
        if checked is None:
            raise ValidationFailed.listing(problems)
        source = self._source(checked, job.source)
        store = self._store()
        try:
            return ImportCursor(job, checked, source, store, self.constitutional_hash)
        except BaseException:
            store.close()
            source.close()
            raise

    def report(self, job: JobContext, summary: Mapping[str, Any]) -> Mapping[str, Any]:
        del job
        result: dict[str, Any] = {name: int(summary.get(name, 0)) for name in COUNTS}
        result["conflicts_listed"] = list(summary.get("conflicts_listed", []))
        result["constitutional_hash"] = self.constitutional_hash
        return result

    def _source(self, checked: ImportParameters, source: JobSource | None) -> RecordSource:
        if checked.conninfo is not None and checked.query is not None:
            return self._query_source(checked.conninfo, checked.query, checked.column_mapping)
        if source is None:
            raise ValidationFailed.field("source", f"a {checked.format} file is required")
        path = Path(source.path)
        if checked.format == "csv":
            return CsvSource(path, checked.column_mapping, checked.delimiter)
        return JsonLinesSource(path, checked.column_mapping)

    def _source_problems(
        self, checked: ImportParameters, source: JobSource | None
    ) -> list[dict[str, str]]:
        try:
            opened = self._source(checked, source)
            try:
                columns = opened.columns()
            finally:
                opened.close()
        except SourceUnreadable as failure:
            return [{"field": failure.details.get("field", "source"), "message": failure.message}]
        if checked.format == "jsonl":
            return []  # each record names its own fields: checked row by row
        missing = missing_fields(renamed(columns, checked.column_mapping))
        if not missing:
            return []
        where = "query" if checked.format == "postgresql" else "source"
        return [
            {
                "field": where,
                "message": f"no column for {', '.join(missing)} "
                "(rename the legacy columns with column_mapping)",
            }
        ]


@dataclass
class _Tally:
    """A batch's counts and failures, added to the job's summary once the batch commits."""

    invalid: int = 0
    skipped: int = 0
    failed: list[tuple[int, FailedItem]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def conflict(self, number: int, key: str, legacy_id: str | None, other: str) -> None:
        self.conflicts.append(
            {"row": number, "decision_id": legacy_id, "dedup_key": key, "conflicts_with": other}
        )
        self.failed.append(
            (number, FailedItem(f"row {number}", f"conflicts with {other}", CONFLICT))
        )


# What a batch keeps of the first row of each key: (row number, content_sha256, legacy id).
# A tuple of atomic values only, which the garbage collector stops tracking at its first pass;
# the decisions themselves (their context included) are dropped once encoded, so the collector
# does not walk thousands of them again and again while the batch waits for the database.
_First = tuple[int, str, str | None]


@dataclass
class _Prepared:
    """A batch read and checked, before the database sees it."""

    read: int = 0
    tally: _Tally = field(default_factory=_Tally)
    first: dict[str, _First] = field(default_factory=dict)  # of each key
    repeats: dict[str, list[int]] = field(default_factory=dict)  # later rows, the same content
    chunks: list[bytes] = field(default_factory=list)  # the first rows, encoded


class ImportCursor:
    def __init__(
        self,
        job: JobContext,
        parameters: ImportParameters,
        source: RecordSource,
        store: ImportedDecisionStore,
        constitutional_hash: str,
    ) -> None:
        self._job = job
        self._batch_size = parameters.batch_size
        self._source = source
        self._store = store
        self._hash = constitutional_hash
        stored = store.progress(job.tenant_id, job.job_id)
        self.rows_through, kept = stored or (0, _empty_summary())
        self.summary = {k: v for k, v in kept.items() if k != _BATCH_FAILURES}
        # The last batch committed here but its progress never reached the runner: say it first,
        # with its failed items (kept with the batch's progress for this).
        recorded = (job.checkpoint or {}).get("rows_through")
        self._catch_up = stored is not None and recorded != self.rows_through
        self._caught_up = tuple(FailedItem(*item) for item in kept.get(_BATCH_FAILURES, []))
        self.total = source.count()
        self._records: Iterator[Record] = source.records(self.rows_through)
        # One reader thread: it alone touches the source once started, one batch ahead.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decision-import")
        self._ahead: Future[_Prepared | None] | None = None

    def next_batch(self) -> BatchOutcome | None:
        if self._ahead is None:
            self._ahead = self._reader.submit(self._prepared)
        if self._catch_up:
            self._catch_up = False
            return self._outcome(self._caught_up)
        prepared = self._ahead.result()
        if prepared is None:
            return None
        tally, first, repeats = prepared.tally, prepared.first, prepared.repeats
        with self._store.batch(self._job.tenant_id, self._job.job_id, self.rows_through) as tx:
            tx.stage(prepared.chunks)
            self._ahead = self._reader.submit(self._prepared)  # while the database settles
            existing = tx.settle()
            imported = len(first) - len(existing)
            for key, content in existing.items():  # the keys imported before
                number, first_content, legacy_id = first[key]
                if content == first_content:
                    tally.skipped += 1
                else:  # the key's first row and its repeats all conflict
                    for row in (number, *repeats.pop(key, ())):
                        tally.conflict(row, key, legacy_id, "a decision imported before")
            tally.skipped += sum(map(len, repeats.values()))
            rows_through = self.rows_through + prepared.read
            summary = _added(self.summary, rows_through, imported, tally)
            failed = tuple(item for _, item in sorted(tally.failed, key=_row))
            batch_failures = [[f.item, f.error, f.recommendation] for f in failed]
            tx.save_progress(rows_through, {**summary, _BATCH_FAILURES: batch_failures})
        self.rows_through, self.summary = rows_through, summary
        return self._outcome(failed)

    def _prepared(self) -> _Prepared | None:
        """The next batch's records, checked, its new keys encoded (in the log's order); None at
        the end.
        The records are taken one at a time, not a chunk at once: what stays alive while a chunk
        is checked is only its new decisions (fewer objects for the garbage collector to walk)."""
        records = itertools.islice(self._records, self._batch_size)
        prepared = _Prepared()
        while True:  # chunk by chunk
            read = prepared.read
            new = self._checked(itertools.islice(records, CHUNK_ROWS), prepared)
            if prepared.read == read:
                break
            prepared.chunks.append(self._store.encoded(self._job.tenant_id, new))
        if not prepared.read:
            return None
        prepared.chunks = self._store.in_log_order(prepared.chunks)
        return prepared

    def close(self) -> None:
        try:
            self._reader.shutdown(wait=True, cancel_futures=True)  # a batch read ahead is dropped
            self._store.close()
        finally:
            self._source.close()

    def _checked(self, chunk: Iterable[Record], prepared: _Prepared) -> list[ImportedDecision]:
        """The chunk's decisions whose key the batch had not met (the others tallied, or noted
        as repeats of the first of their key); the chunk's records are counted as read."""
        tally, first_of, repeats = prepared.tally, prepared.first, prepared.repeats
        new: list[ImportedDecision] = []
        read = prepared.read
        for number, fields in chunk:
            read += 1
            if isinstance(fields, str):
                tally.invalid += 1
                tally.failed.append((number, FailedItem(f"row {number}", fields, UNREADABLE_ROW)))
                continue
            try:
                decision = imported_decision(fields, self._hash)
            except InvalidRow as bad:
                tally.invalid += 1
                tally.failed.append((number, FailedItem(f"row {number}", str(bad), INVALID_ROW)))
                continue
            key = decision.dedup_key
            first = first_of.get(key)
            if first is None:
                first_of[key] = number, decision.content_sha256, decision.legacy_id
                new.append(decision)
            elif first[1] == decision.content_sha256:
                repeats.setdefault(key, []).append(number)
            else:
                tally.conflict(number, key, decision.legacy_id, f"row {first[0]}")
        prepared.read = read
        return new

    def _outcome(self, failed: tuple[FailedItem, ...]) -> BatchOutcome:
        return BatchOutcome(
            processed=self.rows_through,
            summary=self.summary,
            checkpoint={"rows_through": self.rows_through},
            failed=failed,
        )


def _row(numbered: tuple[int, Any]) -> int:
    return numbered[0]


def _empty_summary() -> dict[str, Any]:
    return {**dict.fromkeys(COUNTS, 0), "failed_items": 0, "conflicts_listed": []}


def _added(summary: Mapping[str, Any], rows: int, imported: int, tally: _Tally) -> dict[str, Any]:
    listed = list(summary.get("conflicts_listed", []))
    listed += sorted(tally.conflicts, key=lambda c: int(c["row"]))[: CONFLICTS_LISTED - len(listed)]
    conflicts = int(summary["conflicts"]) + len(tally.conflicts)
    invalid = int(summary["invalid_rows"]) + tally.invalid
    return {
        "rows": rows,
        "imported": int(summary["imported"]) + imported,
        "skipped_duplicates": int(summary["skipped_duplicates"]) + tally.skipped,
        "conflicts": conflicts,
        "invalid_rows": invalid,
        "failed_items": conflicts + invalid,  # the runner's count of failed items
        "conflicts_listed": listed,
    }
