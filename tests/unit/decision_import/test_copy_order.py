"""The rows of a batch as the import stages them: every row of its chunks once, escaped values
included (a line break in a value is no row's end), in the order of the decision log's ids."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from domain.decision_import.record import imported_decision
from infra.postgres import decision_import_store
from infra.postgres.decision_import_store import copy_text, in_log_order

HASH = "cdd01ef066bc6cf2"


def _row(n: int) -> dict[str, str]:
    return {
        "decision_id": f"D-{n}",
        "timestamp": "2025-03-04T05:06:07Z",
        "principal": f"user{n}",
        "action": "read",
        "resource": f"doc/{n}",
        "decision": "allow",
        "reason": "two\nlines\tand a \\" if n % 10 == 0 else "",  # every other chunk escaped
        "context": f'{{"n": {n}}}',
    }


def test_the_batch_is_its_rows_in_decision_id_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decision_import_store, "COPY_ROWS", 7)
    tenant = uuid4()
    rows = [imported_decision(_row(n), HASH) for n in range(1, 41)]
    chunks = [copy_text(rows[start : start + 5], tenant) for start in range(0, len(rows), 5)]
    assert sum(b"\\n" in chunk for chunk in chunks) == 4  # the escaped ones
    ordered = in_log_order(chunks)
    assert [chunk.count(b"\n") for chunk in ordered] == [7, 7, 7, 7, 7, 5]
    assert all(chunk.endswith(b"\n") for chunk in ordered)
    lines = b"".join(ordered).split(b"\n")
    assert lines.pop() == b""
    assert sorted(lines) == sorted(line for c in chunks for line in c.split(b"\n") if line)
    ids = [UUID(line[:32].decode()) for line in lines]
    assert ids == sorted(r.decision_id(tenant) for r in rows)


def test_an_empty_batch_stages_nothing() -> None:
    assert in_log_order([b"", b""]) == []
