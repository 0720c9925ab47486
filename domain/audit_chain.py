"""The audit log's hash chain: each tenant's rows, in log order, each hash covering the row's
content and the previous row's hash, so an edited, removed or inserted row shows.

`row_hash = sha256(prev_hash + "\\n" + canonical(row))`, hex, where canonical(row) is the JSON of
the fields in `CHAINED_FIELDS` (keys sorted, no spaces, UTF-8, the timestamp as UTC ISO 8601 with
microseconds). The first row of a tenant follows `GENESIS` (64 zeros); after retention removed
the oldest rows, the retained chain starts at the anchor: the last removed row's number and hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
CHAINED_FIELDS = (
    "audit_id",
    "tenant_id",
    "chain_seq",
    "event_type",
    "event_category",
    "actor_id",
    "actor_type",
    "target_resource",
    "target_id",
    "action",
    "result",
    "details",
    "error_message",
    "ip_address",
    "user_agent",
    "session_id",
    "constitutional_hash",
    "constitutional_validation_passed",
    "timestamp",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if value is None or isinstance(value, bool | int | float | str | dict | list):
        return value
    return str(value)  # UUID, IP address


def canonical(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers (missing fields count as null)."""
    content = {name: _plain(row.get(name)) for name in CHAINED_FIELDS}
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(row)).hexdigest()


@dataclass
class ChainReport:
    """What verification found: `ok` when every problem list is empty."""

    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problems": self.problems,
        }


MAX_PROBLEMS = 100


def verify_chain(
    rows: Iterable[Mapping[str, Any]],
    *,
    head_seq: int,
    head_hash: str,
    anchor_seq: int = 0,
    anchor_hash: str = GENESIS,
) -> ChainReport:
    """Check `rows` (one tenant's, ordered by chain_seq) against the recorded head and anchor.

    Finds: a row whose content no longer matches its hash (`altered`), a row whose previous hash
    is not its predecessor's (`broken_link`), a gap in the numbering (`missing`: rows removed),
    and a head the rows do not reach (`missing_tail`: the newest rows removed)."""
    report = ChainReport(head_seq=head_seq, head_hash=head_hash)
    expected_seq, expected_prev = anchor_seq + 1, anchor_hash

    def problem(kind: str, **details: Any) -> None:
        if len(report.problems) < MAX_PROBLEMS:
            report.problems.append({"kind": kind, **details})

    for row in rows:
        seq = int(row["chain_seq"])
        report.rows += 1
        report.first_seq = seq if report.first_seq is None else report.first_seq
        report.last_seq = seq
        if seq != expected_seq:
            problem("missing", from_seq=expected_seq, to_seq=seq - 1)
        elif row["prev_hash"] != expected_prev:
            problem("broken_link", seq=seq, audit_id=str(row["audit_id"]))
        if row_hash(str(row["prev_hash"]), row) != row["row_hash"]:
            problem("altered", seq=seq, audit_id=str(row["audit_id"]))
        expected_seq, expected_prev = seq + 1, str(row["row_hash"])
    last = expected_seq - 1
    if last < head_seq:
        problem("missing_tail", from_seq=last + 1, to_seq=head_seq)
    elif last == head_seq and last > anchor_seq and expected_prev != head_hash:
        problem("head_mismatch", seq=head_seq)
    elif last > head_seq:
        problem("beyond_head", from_seq=head_seq + 1, to_seq=last)
    return report
