"""File sources: records numbered as a user counts them, unreadable records named, and a resume
that skips exactly the records consumed."""

from __future__ import annotations

from pathlib import Path

import pytest

from commands.decision_import.sources import CsvSource, JsonLinesSource
from domain.decision_import.errors import SourceUnreadable


def test_csv_rows_count_records_not_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        '\ufeffid;who;reason\nD-1;ann;"two\nlines"\n\nD-2;bob\nD-3;cid;ok\n', encoding="utf-8"
    )
    source = CsvSource(path, {"id": "decision_id", "who": "principal"}, delimiter=";")
    assert list(source.columns()) == ["id", "who", "reason"]
    assert source.count() == 3
    assert list(source.records(0)) == [
        (1, {"decision_id": "D-1", "principal": "ann", "reason": "two\nlines"}),
        (2, "has 2 fields where the header has 3"),
        (3, {"decision_id": "D-3", "principal": "cid", "reason": "ok"}),
    ]
    assert list(source.records(2)) == [
        (3, {"decision_id": "D-3", "principal": "cid", "reason": "ok"})
    ]


def test_json_lines_rows_are_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"who": "ann"}\n\n"text"\n{"who": "bob"}\n', encoding="utf-8")
    source = JsonLinesSource(path, {"who": "principal"})
    assert source.count() == 3
    assert list(source.records(1)) == [(3, "is not a JSON object"), (4, {"principal": "bob"})]


def test_an_empty_csv_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    assert (CsvSource(path, {}).count(), list(CsvSource(path, {}).columns())) == (0, [])


def test_a_file_that_is_not_utf8_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes('{"who": "Jos\xe9"}\n'.encode("latin-1"))
    with pytest.raises(SourceUnreadable) as caught:
        JsonLinesSource(path, {}).count()
    assert caught.value.details == {"field": "source"}
