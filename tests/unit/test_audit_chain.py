"""The audit hash chain and the CSV cell neutralisation, as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.audit_chain import GENESIS, row_hash, verify_chain
from projections.audit_formats import neutralise


def chain(n: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        row: dict[str, Any] = {
            "audit_id": f"id-{seq}",
            "tenant_id": "t",
            "chain_seq": seq,
            "details": {"b": [1, 2.5], "a": "é"},
            "timestamp": datetime(2026, 1, 1, 12, 0, seq, 123456, tzinfo=UTC),
            "prev_hash": prev,
        }
        row["row_hash"] = prev = row_hash(prev, row)
        rows.append(row)
    return rows


def test_an_intact_chain_verifies() -> None:
    rows = chain(5)
    report = verify_chain(rows, head_seq=5, head_hash=rows[-1]["row_hash"])
    assert report.ok
    assert (report.rows, report.first_seq, report.last_seq) == (5, 1, 5)


def test_the_hash_covers_every_field_and_key_order_does_not_matter() -> None:
    row = chain(1)[0]
    assert row_hash(GENESIS, {**row, "details": {"a": "é", "b": [1, 2.5]}}) == row["row_hash"]
    assert row_hash(GENESIS, {**row, "details": {"a": "e", "b": [1, 2.5]}}) != row["row_hash"]
    assert row_hash(GENESIS, {**row, "result": "denied"}) != row["row_hash"]
    assert row_hash("1" * 64, row) != row["row_hash"]


def test_a_chain_after_retention_starts_at_its_anchor() -> None:
    rows = chain(5)
    anchor = rows[1]
    report = verify_chain(
        rows[2:],
        head_seq=5,
        head_hash=rows[-1]["row_hash"],
        anchor_seq=2,
        anchor_hash=anchor["row_hash"],
    )
    assert report.ok, report.problems
    wrong = verify_chain(rows[2:], head_seq=5, head_hash=rows[-1]["row_hash"])
    assert [p["kind"] for p in wrong.problems] == ["missing"]


def test_formulas_are_neutralised_and_plain_text_is_not() -> None:
    for cell in ("=SUM(A1)", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralise(cell) == "'" + cell
    for cell in ("plain", "", "a=b", "1-2", " =x"):
        assert neutralise(cell) == cell


def test_an_altered_row_and_a_removed_row_are_found() -> None:
    rows = chain(4)
    head = rows[-1]["row_hash"]
    altered = [rows[0], {**rows[1], "details": {"a": "x"}}, rows[2], rows[3]]
    report = verify_chain(altered, head_seq=4, head_hash=head)
    assert report.problems == [{"kind": "altered", "seq": 2, "audit_id": "id-2"}]
    report = verify_chain([rows[0], rows[2], rows[3]], head_seq=4, head_hash=head)
    assert report.problems == [{"kind": "missing", "from_seq": 2, "to_seq": 2}]
    report = verify_chain(rows[:3], head_seq=4, head_hash=head)
    assert report.problems == [{"kind": "missing_tail", "from_seq": 4, "to_seq": 4}]
