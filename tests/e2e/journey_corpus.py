"""The legacy estate of the migration journey (tests/e2e/test_migration_journey.py and
docs/migration-playbook.md): three legacy policy files (one broken) and a decision log whose
rows, repeats, conflicts, bad rows and disagreements with the converted Rego are known exactly.

The converted `documents` policy allows a `read` by a principal whose context role is `owner` and
denies everything else. Legacy decision i (i = 0 .. DECISIONS-1, ten seconds apart from
2025-11-02 10:00 UTC) is a read by an owner when i is even, by a guest when i is odd; the legacy
engine decided as Rego does, except when i % 50 == 1 (a guest allowed: a violation the legacy
engine missed) and when i % 50 == 2 (an owner denied).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH as HASH

DOCUMENTS = """POLICY documents "Document access"
DEFAULT deny
RULE owners-read
  WHEN context.role == "owner" AND action == "read"
  THEN ALLOW
  OBLIGE audit
"""
EXPENSES = """{"policy_id": "expenses", "default": "deny",
 "rules": [{"id": "managers-approve", "effect": "allow",
            "when": {"all": [{"field": "user.role", "op": "eq", "value": "manager"},
                             {"field": "action", "op": "eq", "value": "approve"}]}}]}
"""
# Version 2 of `documents`, as docs/migration-playbook.md step 6 writes it: it cannot evaluate a
# request whose context carries "fail" (a division by zero stands in for any bug).
FAULTY_DOCUMENTS = f"""package acgs.custom.documents

constitutional_hash := "{HASH}"

default allow := false

allow if {{
	input.constitutional_hash == constitutional_hash
	input.context.role == "owner"
	not input.context.fail
}}

allow if {{
	input.context.fail
	1 / 0 == 1
}}

deny contains "constitutional hash mismatch" if input.constitutional_hash != constitutional_hash

deny contains "not an owner" if input.context.role != "owner"

obligations := set()
"""
BROKEN = "POLICY broken\nRULE r WHEN user.role === THEN ALLOW\n"
LEGACY_POLICIES = {"documents.rules": DOCUMENTS, "expenses.json": EXPENSES, "broken.rules": BROKEN}

DECISIONS = 1100
START = datetime(2025, 11, 2, 10, 0, tzinfo=UTC)
COLUMNS = (
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
)


def missed(i: int) -> bool:
    """The legacy engine allowed a guest (Rego denies): a critical disagreement."""
    return i % 50 == 1


def overruled(i: int) -> bool:
    """The legacy engine denied an owner (Rego allows)."""
    return i % 50 == 2


def decision_row(i: int) -> dict[str, str]:
    owner = i % 2 == 0
    allowed = owner != (missed(i) or overruled(i))
    return {
        "decision_id": f"D-{i}",
        "timestamp": (START + timedelta(seconds=10 * i)).isoformat().replace("+00:00", "Z"),
        "principal": f"user{i}@example.com",
        "action": "read",
        "resource": f"documents/{i}",
        "context": '{"role": "owner"}' if owner else '{"role": "guest"}',
        "decision": "allow" if allowed else "deny",
        "reason": "legacy rule 7",
        "policy_id": "legacy-docs",
        "latency_ms": "4.5",
    }


def decision_log_csv() -> str:
    """DECISIONS good rows (rows 1..1100), then rows 1101-1103 bad, 1104-1107 repeats of rows
    11-14, 1108 another outcome for D-20 (imported in an earlier batch), 1109 another reason for
    D-1099 (row 1100, in the same batch)."""
    rows = [decision_row(i) for i in range(DECISIONS)]
    rows.append({**decision_row(5000), "timestamp": "yesterday"})
    rows.append({**decision_row(5001), "decision": "maybe"})
    rows.append({**decision_row(5002), "principal": ""})
    rows += [decision_row(i) for i in range(10, 14)]
    flipped = decision_row(20)
    rows.append({**flipped, "decision": "deny" if flipped["decision"] == "allow" else "allow"})
    rows.append({**decision_row(DECISIONS - 1), "reason": "another reason"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def agreement_by_hour() -> list[tuple[str, float]]:
    """The agreement rate of the good rows per hour of their timestamps, oldest first."""
    hours: dict[datetime, list[int]] = {}
    for i in range(DECISIONS):
        at = START + timedelta(seconds=10 * i)
        tally = hours.setdefault(at.replace(minute=0, second=0), [0, 0])
        tally[0] += not (missed(i) or overruled(i))
        tally[1] += 1
    return [(hour.isoformat(), round(a / n, 6)) for hour, (a, n) in sorted(hours.items())]
