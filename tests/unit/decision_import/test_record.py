"""One legacy row checked: every bad field named at once, times in UTC, the request digest of
the decision log, and the keys that tell a repeat from a conflict."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from domain.decision_import import record
from domain.decision_import.record import InvalidRow, imported_decision
from domain.registry.decision_log import input_digest

HASH = "cdd01ef066bc6cf2"


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "decision_id": "D-1",
        "timestamp": "2025-03-04T05:06:07Z",
        "principal": 'ann "the admin" ✓',
        "action": "read",
        "resource": "docs/1",
        "context": '{"z": 1, "a": {"y": [1, 2.5, null], "b": "é\\\\"}}',
        "decision": "allow",
        "reason": "rule 7",
        "policy_id": "legacy-1",
        "latency_ms": "1.5",
    }
    row.update(changes)
    return row


def test_a_good_row_is_read_with_the_decision_logs_request_digest() -> None:
    decision = imported_decision(_row(), HASH)
    assert decision.decided_at == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert (decision.principal, decision.allow, decision.latency_ms) == (
        'ann "the admin" ✓',
        True,
        1.5,
    )
    assert decision.context == {"z": 1, "a": {"y": [1, 2.5, None], "b": "é\\"}}
    assert decision.input_sha256 == input_digest(
        {
            "principal": decision.principal,
            "action": "read",
            "resource": "docs/1",
            "context": decision.context,
        }
    )
    assert decision.constitutional_hash == HASH


def test_every_bad_field_of_a_row_is_named() -> None:
    with pytest.raises(InvalidRow) as caught:
        imported_decision(
            _row(timestamp="04/03/2025", principal=" ", decision="permit", context="[1]",
                 latency_ms="-2", reason="x" * 5000),
            HASH,
        )  # fmt: skip
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "timestamp",
        "principal",
        "context",
        "decision",
        "reason",
        "latency_ms",
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2025-03-04T05:06:07Z", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2025-03-04T07:06:07.5+02:00", datetime(2025, 3, 4, 5, 6, 7, 500000, tzinfo=UTC)),
        ("2025-03-04 05:06:07", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2025-03-04", datetime(2025, 3, 4, tzinfo=UTC)),
        (datetime(2025, 3, 4, 5, 6, 7), datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),  # noqa: DTZ001
        (
            datetime(2025, 3, 4, 6, 6, 7, tzinfo=timezone(timedelta(hours=1))),
            datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
        ),
    ],
)
def test_times_are_read_in_utc(given: object, expected: datetime) -> None:
    decided_at = imported_decision(_row(timestamp=given), HASH).decided_at
    assert decided_at == expected
    assert decided_at.tzinfo is UTC


@pytest.mark.parametrize(
    "given",
    [
        "2025-03-04T05:06:07Z",  # read off as it is
        "2025-03-04T05:06:07+00:00",
        "2025-03-04 05:06:07Z",
        "2025-03-04T05:06:07.5Z",
        "2025-W10-2T05:06:07Z",  # a week date of the same length
        "2025-03-04T050607.5Z",
        " 2025-03-04T05:06:07Z",
        "2025-03-04T06:06:07+01:00",
        datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
    ],
)
def test_the_time_text_the_digests_read_is_the_utc_time_in_iso_8601(given: object) -> None:
    decision = imported_decision(_row(timestamp=given), HASH)
    assert decision.decided_text == decision.decided_at.isoformat()


@pytest.mark.parametrize(
    ("value", "allow"), [("allow", True), ("DENY", False), (" Allow ", True), (True, True)]
)
def test_decisions_are_allow_or_deny(value: object, allow: bool) -> None:
    assert imported_decision(_row(decision=value), HASH).allow is allow


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("latency_ms", "NaN", "latency_ms: must be a finite number of milliseconds, at least 0"),
        ("latency_ms", True, "latency_ms: must be a number of milliseconds"),
        ("context", '{"a": "\\u0000"}', "context: holds a NUL character"),
        ("context", "{", "context: not valid JSON"),
        ("principal", "a\x00b", "principal: holds a NUL character"),
        ("decision_id", {"x": 1}, "decision_id: must be text"),
        ("decision", "", "decision: must be allow or deny"),
        ("decision", 1, "decision: must be allow or deny"),
        ("latency_ms", "fast", "latency_ms: must be a number of milliseconds"),
        ("timestamp", " ", "timestamp: is required"),
        ("timestamp", 1741064767, "timestamp: not an ISO 8601 time (e.g. 2026-03-01T12:00:00Z)"),
        ("context", '{"a": "' + "x" * 65_536 + '"}', "context: larger than 65536 bytes"),
        ("context", {"a": "x" * 65_536}, "context: larger than 65536 bytes"),
    ],
)
def test_what_the_decision_log_cannot_keep_is_refused(
    field: str, value: object, problem: str
) -> None:
    with pytest.raises(InvalidRow) as caught:
        imported_decision(_row(**{field: value}), HASH)
    assert caught.value.problems == [problem]


def test_database_values_are_read_like_text() -> None:
    decision = imported_decision(
        _row(
            latency_ms=Decimal("2.25"),
            context={"n": 1},
            decision=False,
            decision_id=7,
            resource=Decimal("12"),
        ),
        HASH,
    )
    assert (decision.latency_ms, decision.context, decision.allow, decision.legacy_id) == (
        2.25,
        {"n": 1},
        False,
        "7",
    )
    assert decision.resource == "12"


def test_the_key_is_the_legacy_id_and_the_content_is_everything() -> None:
    base = imported_decision(_row(), HASH)
    assert imported_decision(_row(reason="other"), HASH).dedup_key == base.dedup_key
    assert imported_decision(_row(reason="other"), HASH).content_sha256 != base.content_sha256
    assert imported_decision(_row(principal=' ann "the admin" ✓ '), HASH) == base  # trimmed
    assert imported_decision(_row(decision_id="D-2"), HASH).dedup_key != base.dedup_key


def test_without_a_legacy_id_the_key_is_the_request_and_its_outcome() -> None:
    base = imported_decision(_row(decision_id=""), HASH)
    same_key = imported_decision(_row(decision_id="", reason="other", latency_ms=""), HASH)
    assert (same_key.dedup_key, same_key.content_sha256 != base.content_sha256) == (
        base.dedup_key,
        True,
    )
    for change in (
        {"timestamp": "2025-03-04T05:06:08Z"},
        {"principal": "bob"},
        {"action": "write"},
        {"resource": "docs/2"},
        {"decision": "deny"},
    ):
        assert imported_decision(_row(decision_id="", **change), HASH).dedup_key != base.dedup_key
    same_time = imported_decision(_row(decision_id="", timestamp="2025-03-04T07:06:07+02:00"), HASH)
    assert same_time.dedup_key == base.dedup_key  # one instant, however it is written


def test_the_log_id_is_stable_per_tenant_and_differs_between_tenants() -> None:
    decision = imported_decision(_row(), HASH)
    a, b = uuid4(), uuid4()
    assert decision.decision_id(a) == decision.decision_id(a)
    assert decision.decision_id(a) != decision.decision_id(b)


def _outcome(check: Any, value: object) -> object:
    try:
        return check(value)
    except ValueError as bad:
        return f"ValueError: {bad}"


def _latency_as_written(value: object) -> float | None:
    """The latency check without its fast path: blank, then the stripped text read as a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number of milliseconds")
    try:
        latency = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError("must be a number of milliseconds") from None
    if not math.isfinite(latency) or latency < 0:
        raise ValueError("must be a finite number of milliseconds, at least 0")
    return latency


LATENCIES = ["1.5", " 1.5 ", "\u20031.5\u2003", "1_0", "١٢", "0", "-0.0", "-1", "nan", "inf",
             "1e400", "", "  ", "\t", "x", "1.5x", None, 3, 2.5, True]  # fmt: skip


@pytest.mark.parametrize("value", LATENCIES)
def test_the_latencys_fast_path_reads_as_the_check_does(value: object) -> None:
    assert _outcome(record._latency, value) == _outcome(_latency_as_written, value)


@pytest.mark.parametrize(
    "value", ['{"a": 1}', ' {"a": 1}', '{"a": 1}\u2003', "", " ", "\u2003", "\n", "{", "[1]", None]
)
def test_the_contexts_fast_path_tells_blank_as_the_check_does(value: object) -> None:
    blank = value is None or (isinstance(value, str) and not value.strip())
    assert (_outcome(record._context, value) == ({}, b"{}")) is blank
