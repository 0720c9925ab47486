"""The audit export writers over many rows: progress is reported every PROGRESS_EVERY rows, the
details given as a dict are written as JSON (as the stored text is), every cell of a CSV and a
PDF line is text, and a long PDF runs onto further pages, each with the table's heading."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

import pytest
from pypdf import PdfReader

from projections.audit_formats import (
    CSV_COLUMNS,
    PROGRESS_EVERY,
    plain_row,
    write_csv,
    write_json,
    write_jsonl,
    write_pdf,
)

ROWS = PROGRESS_EVERY + 1
HEADER: dict[str, Any] = {
    "tenant_id": "t-1",
    "generated_at": "2026-01-01T00:00:00+00:00",
    "export_id": "e-1",
    "filters": {"result": "failure"},
    "total_rows": ROWS,
    "totals": {"by_result": {"failure": ROWS}},
    "chain_head": {"seq": ROWS, "hash": "ab" * 32},
}


def row(n: int) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(CSV_COLUMNS)
    values.update(
        audit_id=UUID(int=n),
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        event_type="policy.evaluated",
        event_category="policy",
        actor_id=None,
        action="evaluate",
        result="failure",
        target_resource=["policy", n],
        details={"rule": "=deny", "n": n},
        constitutional_validation_passed=False,
        chain_seq=n,
    )
    return values


Writer = Callable[[Any, IO[bytes], dict[str, Any], Callable[[int], None]], int]


def write(writer: Writer) -> tuple[bytes, list[int]]:
    out = io.BytesIO()
    reported: list[int] = []
    assert writer((row(n) for n in range(ROWS)), out, HEADER, reported.append) == ROWS
    return out.getvalue(), reported


@pytest.mark.parametrize("writer", [write_json, write_jsonl, write_csv, write_pdf])
def test_progress_is_reported_every_so_many_rows(writer: Writer) -> None:
    assert write(writer)[1] == [PROGRESS_EVERY]


def test_json_and_jsonl_write_a_dict_of_details_as_json() -> None:
    document = json.loads(write(write_json)[0])
    assert document["rows"][7]["details"] == {"n": 7, "rule": "=deny"}
    lines = write(write_jsonl)[0].splitlines()
    assert json.loads(lines[0]) == {"export": HEADER}
    assert json.loads(lines[8])["target_resource"] == ["policy", 7]


def test_csv_cells_are_text() -> None:
    table = list(csv.reader(io.StringIO(write(write_csv)[0].decode())))
    cells = dict(zip(table[0], table[8], strict=True))
    assert cells["actor_id"] == ""
    assert cells["target_resource"] == '["policy",7]'
    assert cells["details"] == '{"n":7,"rule":"=deny"}'
    assert cells["constitutional_validation_passed"] == "false"


def test_a_long_pdf_continues_on_more_pages_each_with_the_heading() -> None:
    reader = PdfReader(io.BytesIO(write(write_pdf)[0]))
    assert len(reader.pages) > 2
    last = reader.pages[-1].extract_text()
    assert "Time (UTC)" in last
    assert '["policy",500]' in last


def test_a_plain_row_holds_json_values() -> None:
    assert plain_row(row(3)) | {"details": None} == {
        **row(3),
        "audit_id": str(UUID(int=3)),
        "timestamp": "2026-01-01T00:00:00+00:00",
        "details": None,
    }
