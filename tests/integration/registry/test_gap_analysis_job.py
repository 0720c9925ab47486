"""The gap_analysis kind on the real database and the real Rego engine, driven through the
migration-job port as the runner drives it (validate, open, next_batch ..., report): resumed
mid-way with exact counts, gaps fixed by a new active version, accepted gaps staying accepted,
regressions reopened, and every row behind row-level security."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from api.bootstrap import System
from commands.context import CommandContext, Principal
from commands.gap_analysis import GapAnalysisKind
from commands.migration_kinds import BatchOutcome, JobContext
from commands.policy_intake import SubmitPolicy
from commands.tenants import CreateTenant
from domain.errors import Forbidden, InvalidStateTransition
from domain.maci import MaciRole
from domain.policy.gaps.tracking import gap_identity
from domain.sinks import Severity, classify
from projections.gaps import find_gap, gap_trend, list_gaps
from tests.integration.spine.support import HASH, PLATFORM

pytestmark = [pytest.mark.postgres, pytest.mark.rego]

OPEN_DOOR = "POLICY {key}\nDEFAULT allow\nRULE anyone-reads\n  THEN ALLOW\n"
PAYROLL = (
    "POLICY payroll\nRULE payroll-read\n"
    '  WHEN resource.type == "payroll" AND action == "read"\n  THEN ALLOW\n'
    'RULE clerk-proposes\n  WHEN user.role == "clerk" AND action IN ["propose", "approve"]\n'
    "  THEN ALLOW\n"
)
CLEAN = (
    "POLICY {key}\nDEFAULT deny\nRULE analysts-read\n"
    '  WHEN user.role == "analyst" AND action == "read" AND context.time < resource.expires_at\n'
    "  THEN ALLOW\n  OBLIGE audit\n"
)
OPEN_DOOR_SCORE = 10 + 10 + 2 + 1  # GAP-001, GAP-002 critical; GAP-005 medium; GAP-009 low
PAYROLL_SCORE = 5 + 5 + 2 + 1  # GAP-003, GAP-006 high; GAP-005 medium; GAP-009 low


class Registry:
    """A tenant of its own, its admin, and the policies it registers."""

    def __init__(self, system: System, tenant_id: UUID) -> None:
        self.system = system
        self.tenant_id = tenant_id
        self.admin = CommandContext(Principal("admin", tenant_id, (MaciRole.EXECUTIVE,)), HASH)

    def register(self, source: str, *, activate: bool = True) -> int:
        assert self.system.policies is not None
        done = self.system.policies.submit(self.admin, self.tenant_id, SubmitPolicy(source, "dsl"))
        [(policy, version)] = done.versions
        if activate:
            self.activate(policy.policy_key, version.number)
        self.system.runner("policies").catch_up()
        return version.number

    def activate(self, key: str, version: int) -> None:
        assert self.system.policies is not None
        self.system.policies.activate(self.admin, self.tenant_id, key, version)
        self.system.runner("policies").catch_up()

    def job(self, parameters: Mapping[str, Any], checkpoint: Any = None, job_id: UUID | None = None
            ) -> JobContext:  # fmt: skip
        return JobContext(
            tenant_id=self.tenant_id,
            job_id=job_id or uuid4(),
            kind="gap_analysis",
            parameters=parameters,
            source=None,
            requested_by="legislator",
            checkpoint=checkpoint,
            work_dir=Path(),
        )

    def query(self, read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A query of projections.gaps inside a session scoped to the tenant."""

        async def run() -> Any:
            conn: AsyncConnection[DictRow] = await AsyncConnection.connect(
                self.system.app_conninfo, row_factory=dict_row
            )
            async with conn, conn.transaction():
                await conn.execute(
                    "SELECT set_config('app.current_tenant_id', %s, true)", [str(self.tenant_id)]
                )
                return await read(conn, *args, **kwargs)

        return asyncio.run(run())

    def audited(self, action: str) -> list[dict[str, Any]]:
        """The tenant's audit records of `action`, oldest first."""
        self.system.runner("audit_log").catch_up()
        with (
            psycopg.connect(self.system.app_conninfo, row_factory=dict_row) as conn,
            conn.transaction(),
        ):
            conn.execute(
                "SELECT set_config('app.current_tenant_id', %s, true)", [str(self.tenant_id)]
            )
            return conn.execute(
                "SELECT event_type, event_category, action, result, actor_id, details "
                "FROM tenant_audit_log WHERE action = %s ORDER BY chain_seq",
                [action],
            ).fetchall()

    def statuses(self) -> dict[tuple[str, str, str], str]:
        rows, _ = self.query(
            list_gaps, status=None, severity=None, policy_key=None, limit=1000, offset=0
        )
        return {(r["policy_key"], r["rule_id"], r["location"]): r["status"] for r in rows}


@pytest.fixture
def registry(system: System, unique: str) -> Registry:
    tenant = system.tenants.create(
        PLATFORM, CreateTenant(f"Gaps {unique}", f"gaps-{unique}", "gaps@example.com")
    )
    return Registry(system, tenant.id)


def _run(kind: GapAnalysisKind, job: JobContext) -> list[BatchOutcome]:
    cursor = kind.open(job)
    outcomes = []
    while (outcome := cursor.next_batch()) is not None:
        outcomes.append(outcome)
    cursor.close()
    return outcomes


def test_a_job_resumed_mid_way_counts_exactly_what_an_uninterrupted_one_counts(
    system: System, registry: Registry
) -> None:
    for key in ("door-a", "door-b", "door-c"):
        registry.register(OPEN_DOOR.format(key=key))
    registry.register(PAYROLL)
    registry.register(CLEAN.format(key="clean"))
    kind = system.gap_analysis_kind()
    parameters = kind.validate({"batch_size": 2}, None)

    whole = _run(kind, registry.job(parameters))
    assert [o.processed for o in whole] == [2, 4, 5]
    expected = {
        "policies_analysed": 5,
        "gaps_found": 3 * 4 + 4,
        "score": 3 * OPEN_DOOR_SCORE + PAYROLL_SCORE,
        "gap_severities": {"critical": 6, "high": 2, "medium": 4, "low": 4},
        "gap_rules": {"GAP-001": 3, "GAP-002": 3, "GAP-003": 1, "GAP-005": 4, "GAP-006": 1,
                      "GAP-009": 4},
    }  # fmt: skip
    assert whole[-1].summary == expected

    # A worker does two batches, but dies before the second one's progress is recorded: the
    # job is claimed again at the first batch's checkpoint and redoes the second batch.
    job_id = uuid4()
    cursor = kind.open(registry.job(parameters, job_id=job_id))
    first = cursor.next_batch()
    assert first is not None
    assert cursor.next_batch() is not None
    resumed = _run(kind, registry.job(parameters, first.checkpoint, job_id))
    assert [o.processed for o in resumed] == [4, 5]
    assert resumed[-1].summary == expected
    report = kind.report(registry.job(parameters, job_id=job_id), resumed[-1].summary)
    assert report["score"] == expected["score"]
    assert report["gap_severities"] == expected["gap_severities"]
    assert report["gap_rules"] == expected["gap_rules"]
    assert report["scope"] == "active"
    # The second run found every gap the first one left open: nothing new, nothing fixed.
    assert report["gaps"] == {"open": 16, "accepted": 0, "new": 0, "fixed": 0}
    with psycopg.connect(system.app_conninfo) as conn, conn.transaction():
        conn.execute(
            "SELECT set_config('app.current_tenant_id', %s, true)", [str(registry.tenant_id)]
        )
        row = conn.execute(
            "SELECT count(*) FROM gap_run_findings WHERE run_id = %s", [job_id]
        ).fetchone()
    assert row == (16,)  # the redone batch recorded nothing twice


def test_a_fixed_policy_closes_its_gaps_and_an_accepted_gap_stays_accepted(
    system: System, registry: Registry
) -> None:
    registry.register(OPEN_DOOR.format(key="door"))
    registry.register(PAYROLL)
    kind = system.gap_analysis_kind()
    parameters = kind.validate({}, None)
    first = registry.job(parameters)
    [done] = _run(kind, first)
    assert kind.report(first, {})["gaps"] == {"open": 8, "accepted": 0, "new": 8, "fixed": 0}
    assert set(registry.statuses().values()) == {"open"}
    # The run opened two critical gaps: each is an audit entry the sinks alert on.
    alerts = registry.audited("gap_found")
    assert sorted((a["details"]["rule_id"], a["details"]["severity"]) for a in alerts) == [
        ("GAP-001", "critical"),
        ("GAP-002", "critical"),
    ]
    assert {classify(a) for a in alerts} == {(Severity.CRITICAL, "policy_gap_critical")}
    assert {a["details"]["run_id"] for a in alerts} == {str(first.job_id)}
    # A worker that completed the run but died before recording it does it again: no new alert.
    assert kind.open(registry.job(parameters, done.checkpoint, first.job_id)).next_batch() is None
    assert len(registry.audited("gap_found")) == 2

    # The tenant admin accepts the separation-of-powers gap of payroll, with a reason.
    gap_id = gap_identity(registry.tenant_id, "GAP-006", "payroll", "role clerk")
    current = registry.query(find_gap, gap_id)
    assert system.gaps is not None
    reviewed = system.gaps.review(
        registry.admin, registry.tenant_id, gap_id, current,
        action="accept", reason="clerks are two people by procedure",
    )  # fmt: skip
    assert (reviewed.previous.value, reviewed.status.value) == ("open", "accepted")
    system.runner("gap_reviews").catch_up()
    assert registry.statuses()[("payroll", "GAP-006", "role clerk")] == "accepted"

    # Fixing door: a new version, activated, closes every gap of door on the next run.
    registry.register(CLEAN.format(key="door"))
    second = registry.job(parameters)
    _run(kind, second)
    assert kind.report(second, {})["gaps"] == {"open": 3, "accepted": 1, "new": 0, "fixed": 4}
    statuses = registry.statuses()
    assert {k: v for k, v in statuses.items() if k[0] == "door"} == {
        ("door", "GAP-001", "policy"): "fixed",
        ("door", "GAP-002", "rule anyone-reads"): "fixed",
        ("door", "GAP-005", "policy"): "fixed",
        ("door", "GAP-009", "policy"): "fixed",
    }
    assert statuses[("payroll", "GAP-006", "role clerk")] == "accepted"
    fixed = registry.query(find_gap, gap_identity(registry.tenant_id, "GAP-001", "door", "policy"))
    assert fixed["fixed_in_run"] == second.job_id

    # Rolling door back to its first version reopens its gaps (a regression) on the next run;
    # the accepted gap is still accepted.
    registry.activate("door", 1)
    third = registry.job(parameters)
    _run(kind, third)
    assert kind.report(third, {})["gaps"] == {"open": 7, "accepted": 1, "new": 4, "fixed": 0}
    assert len(registry.audited("gap_found")) == 4  # the regression alerts again
    assert registry.statuses()[("door", "GAP-001", "policy")] == "open"
    assert registry.statuses()[("payroll", "GAP-006", "role clerk")] == "accepted"

    trend = registry.query(gap_trend, 10)
    assert [(r["run_id"], r["score"], r["open_count"]) for r in trend] == [
        (first.job_id, OPEN_DOOR_SCORE + PAYROLL_SCORE, 8),
        (second.job_id, PAYROLL_SCORE, 3),
        (third.job_id, OPEN_DOOR_SCORE + PAYROLL_SCORE, 7),
    ]
    critical, total = registry.query(
        list_gaps, status="open", severity="critical", policy_key=None, limit=10, offset=0
    )
    assert (total, {r["rule_id"] for r in critical}) == (2, {"GAP-001", "GAP-002"})


def test_reviews_are_audited_and_refused_to_anyone_but_the_tenant_admin(
    system: System, registry: Registry
) -> None:
    registry.register(PAYROLL)
    kind = system.gap_analysis_kind()
    _run(kind, registry.job(kind.validate({}, None)))
    gap_id = gap_identity(registry.tenant_id, "GAP-003", "payroll", "rule payroll-read")
    current = registry.query(find_gap, gap_id)
    assert system.gaps is not None
    legislator = CommandContext(
        Principal("legislator", registry.tenant_id, (MaciRole.LEGISLATIVE,)), HASH
    )
    with pytest.raises(Forbidden):
        system.gaps.review(legislator, registry.tenant_id, gap_id, current, action="accept",
                           reason="mine")  # fmt: skip
    system.gaps.review(registry.admin, registry.tenant_id, gap_id, current, action="accept",
                       reason="payroll is public here")  # fmt: skip
    system.runner("gap_reviews").catch_up()
    assert registry.statuses()[("payroll", "GAP-003", "rule payroll-read")] == "accepted"
    # Dropping the rule fixes the gap: fixed wins over accepted, and a fixed gap takes no review.
    registry.register(
        PAYROLL.replace("payroll-read", "payroll-read-by-payroll-clerks").replace(
            'resource.type == "payroll"', 'resource.type == "payroll" AND user.role == "payroll"'
        )
    )
    _run(kind, registry.job(kind.validate({}, None)))
    assert registry.statuses()[("payroll", "GAP-003", "rule payroll-read")] == "fixed"
    fixed = registry.query(find_gap, gap_id)
    with pytest.raises(InvalidStateTransition):
        system.gaps.review(registry.admin, registry.tenant_id, gap_id, fixed, action="reopen",
                           reason="no")  # fmt: skip
    system.runner("audit_log").catch_up()
    with psycopg.connect(system.app_conninfo) as conn, conn.transaction():
        conn.execute(
            "SELECT set_config('app.current_tenant_id', %s, true)", [str(registry.tenant_id)]
        )
        rows = conn.execute(
            "SELECT action, result, event_category, actor_id, details->>'reason' FROM "
            "tenant_audit_log WHERE action IN ('accept_gap', 'review_gap') ORDER BY timestamp"
        ).fetchall()
    assert rows == [
        ("review_gap", "denied", "authorization", "legislator", None),
        ("accept_gap", "success", "governance", "admin", "payroll is public here"),
    ]


def test_the_scope_chooses_active_or_latest_versions_and_other_tenants_see_nothing(
    system: System, registry: Registry, unique: str
) -> None:
    registry.register(OPEN_DOOR.format(key="door"))
    registry.register(CLEAN.format(key="door"), activate=False)  # the fix, not yet active
    registry.register(PAYROLL, activate=False)  # never activated
    kind = system.gap_analysis_kind()
    active = registry.job(kind.validate({"scope": "active"}, None))
    latest = registry.job(kind.validate({"scope": "latest"}, None))
    assert _run(kind, active)[-1].summary["score"] == OPEN_DOOR_SCORE
    assert _run(kind, latest)[-1].summary["score"] == PAYROLL_SCORE  # door's latest is clean

    other = system.tenants.create(
        PLATFORM, CreateTenant(f"Other {unique}", f"other-{unique}", "o@example.com")
    )
    with psycopg.connect(system.app_conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(other.id)])
        for table in ("gap_runs", "gap_run_findings", "gaps"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row == (0,), table


def test_reviews_replay_to_the_same_rows_and_a_purged_tenant_leaves_no_gap_rows(
    system: System, registry: Registry, admin_conn: psycopg.Connection[Any]
) -> None:
    registry.register(PAYROLL)
    kind = system.gap_analysis_kind()
    _run(kind, registry.job(kind.validate({}, None)))
    assert system.gaps is not None
    sensitive = gap_identity(registry.tenant_id, "GAP-003", "payroll", "rule payroll-read")
    separation = gap_identity(registry.tenant_id, "GAP-006", "payroll", "role clerk")
    for gap_id in (sensitive, separation):
        current = registry.query(find_gap, gap_id)
        system.gaps.review(
            registry.admin, registry.tenant_id, gap_id, current, action="accept", reason="ok"
        )
    accepted = {**registry.query(find_gap, separation), "status": "accepted"}
    system.gaps.review(
        registry.admin, registry.tenant_id, separation, accepted, action="reopen", reason="no"
    )
    runner = system.runner("gap_reviews")
    runner.catch_up()
    mine = "SELECT * FROM gap_reviews WHERE tenant_id = %s ORDER BY gap_id"
    before = admin_conn.execute(mine, [registry.tenant_id]).fetchall()
    assert {row[0]: (row[2], row[3]) for row in before} == {
        sensitive: ("accepted", "ok"),
        separation: ("open", "no"),
    }
    runner.reset()
    assert runner.catch_up() > 0
    assert admin_conn.execute(mine, [registry.tenant_id]).fetchall() == before

    system.tenants.deactivate(PLATFORM, registry.tenant_id, immediate=True)
    runner.catch_up()
    for table in ("gap_reviews", "gaps", "gap_run_findings", "gap_runs"):
        count = admin_conn.execute(
            f"SELECT count(*) FROM {table} WHERE tenant_id = %s", [registry.tenant_id]
        ).fetchone()
        assert count == (0,), table


def test_policies_of_one_submission_share_their_source_and_each_is_judged_alone(
    system: System, registry: Registry
) -> None:
    bulk = "\n".join(OPEN_DOOR.format(key=f"bulk-{n}") for n in range(3))
    bulk += "\n" + CLEAN.format(key="bulk-3")
    assert system.policies is not None
    done = system.policies.submit(registry.admin, registry.tenant_id, SubmitPolicy(bulk, "dsl"))
    assert {version.source for _, version in done.versions} == {bulk}  # each keeps it all
    system.runner("policies").catch_up()
    kind = system.gap_analysis_kind()
    outcomes = _run(kind, registry.job(kind.validate({"scope": "latest", "batch_size": 3}, None)))
    assert [o.processed for o in outcomes] == [3, 4]
    assert outcomes[-1].summary["score"] == 3 * OPEN_DOOR_SCORE
    assert {k for k, v in registry.statuses().items() if v == "open"} == {
        (f"bulk-{n}", rule, location)
        for n in range(3)
        for rule, location in (
            ("GAP-001", "policy"),
            ("GAP-002", "rule anyone-reads"),
            ("GAP-005", "policy"),
            ("GAP-009", "policy"),
        )
    }


def test_retiring_the_last_policy_fixes_its_gaps_on_a_run_with_nothing_to_analyse(
    system: System, registry: Registry
) -> None:
    registry.register(PAYROLL)
    kind = system.gap_analysis_kind()
    parameters = kind.validate({}, None)
    _run(kind, registry.job(parameters))
    assert set(registry.statuses().values()) == {"open"}
    assert system.policies is not None
    system.policies.retire(registry.admin, registry.tenant_id, "payroll")
    system.runner("policies").catch_up()
    empty = registry.job(parameters)
    assert kind.open(empty).total == 0
    assert _run(kind, empty) == []
    assert kind.report(empty, {})["gaps"] == {"open": 0, "accepted": 0, "new": 0, "fixed": 4}
    assert set(registry.statuses().values()) == {"fixed"}
