"""The decision log's table and writer on the real database: append-only, partitioned by month,
row-level security; batches written off the request path; a full queue drops and counts; a
failed batch is kept and written after the restart."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from api.bootstrap import System
from commands.decision_log import DecisionRecorder
from commands.decisions import ActivePolicy, DecisionRecord
from commands.tenants import CreateTenant
from domain.events import Actor
from domain.policy.json_values import canonical_text
from domain.policy.reference_evaluator import Decision
from infra.postgres.decision_log_store import PostgresDecisionLogStore
from tests.integration.spine.support import PLATFORM

pytestmark = pytest.mark.postgres

POLICY = ActivePolicy(uuid4(), "logged", 3, "acgs.policies.logged", "", system_wide=False)


def _record(tenant: UUID, *, allow: bool = True) -> DecisionRecord:
    return DecisionRecord(
        decision_id=uuid4(),
        tenant_id=tenant,
        policy=POLICY,
        input_sha256="a" * 64,
        input=None,
        decision=Decision(allow, frozenset() if allow else frozenset({"no"}), frozenset()),
        latency_ms=0.05,
        actor=Actor("someone"),
        constitutional_hash="cdd01ef066bc6cf2",
        decided_at=datetime.now(UTC),
    )


def _count(conn: psycopg.Connection[Any], tenant: UUID) -> int:
    row = conn.execute(
        "SELECT count(*) FROM decision_logs WHERE tenant_id = %s", [tenant]
    ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def recorders(system: System) -> Iterator[Callable[..., DecisionRecorder]]:
    made: list[DecisionRecorder] = []

    def make(conninfo: str | None = None, **options: Any) -> DecisionRecorder:
        store = PostgresDecisionLogStore(conninfo or system.projector_conninfo)
        made.append(DecisionRecorder(store, system.app, **options))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close()


def test_batches_are_written_and_counted(
    recorders: Callable[..., DecisionRecorder], admin_conn: psycopg.Connection[Any]
) -> None:
    tenant = uuid4()
    recorder = recorders()
    for _ in range(2500):
        recorder.record(_record(tenant))
    assert _count(admin_conn, tenant) == 0  # nothing is written on the request path
    assert recorder.flush() == 2500
    assert (recorder.made, recorder.logged, recorder.dropped) == (2500, 2500, 0)
    assert _count(admin_conn, tenant) == 2500


def test_a_full_queue_drops_and_counts_never_blocks(
    recorders: Callable[..., DecisionRecorder],
) -> None:
    tenant = uuid4()
    recorder = recorders(capacity=10)
    for _ in range(25):
        recorder.record(_record(tenant))
    assert (recorder.made, recorder.dropped, recorder.queued) == (25, 15, 10)
    assert recorder.flush() == 10
    assert recorder.made == recorder.logged + recorder.dropped


def test_a_failed_batch_is_kept_and_written_once_after_the_restart(
    system: System,
    recorders: Callable[..., DecisionRecorder],
    admin_conn: psycopg.Connection[Any],
) -> None:
    tenant = uuid4()
    recorder = recorders(system.projector_conninfo.replace("acgs2_projector", "nobody"))
    store = recorder._store
    assert isinstance(store, PostgresDecisionLogStore)
    for _ in range(3):
        recorder.record(_record(tenant))
    with pytest.raises(psycopg.OperationalError):
        recorder.flush()
    assert (recorder.logged, recorder.queued) == (0, 3)
    store.conninfo = system.projector_conninfo  # the database is back
    assert recorder.flush() == 3
    assert recorder.flush() == 0
    assert _count(admin_conn, tenant) == 3


def test_the_log_is_append_only_and_tenant_scoped(
    system: System,
    recorders: Callable[..., DecisionRecorder],
    admin_conn: psycopg.Connection[Any],
) -> None:
    tenant, other = uuid4(), uuid4()
    recorder = recorders()
    recorder.record(_record(tenant))
    recorder.flush()
    for conninfo in (system.projector_conninfo, system.app_conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT set_config('app.current_tenant_id', %s, false)", [str(tenant)])
            for statement in (
                "UPDATE decision_logs SET allow = NOT allow",
                "DELETE FROM decision_logs",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    with psycopg.connect(system.app_conninfo, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.current_tenant_id', %s, false)", [str(tenant)])
        assert conn.execute("SELECT count(*) FROM decision_logs").fetchone() == (1,)
        conn.execute("SELECT set_config('app.current_tenant_id', %s, false)", [str(other)])
        assert conn.execute("SELECT count(*) FROM decision_logs").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO decision_logs (decision_id, tenant_id, policy_id, policy_key, "
                "policy_version, input_sha256, allow, deny, obligations, latency_ms, principal, "
                "constitutional_hash, decided_at) VALUES (gen_random_uuid(), %s, "
                "gen_random_uuid(), 'x', 1, 'x', true, '[]', '[]', 0, 'x', 'x', now())",
                [str(other)],
            )
    assert _count(admin_conn, tenant) == 1


def test_the_log_is_partitioned_by_month_and_partitions_are_made_ahead(
    system: System, admin_conn: psycopg.Connection[Any]
) -> None:
    assert system.ensure_decision_log_partitions() == 0  # the migration made them already
    strategy = admin_conn.execute(
        "SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'decision_logs'::regclass"
    ).fetchone()
    assert strategy == ("r",)
    partitions = [
        row[0]
        for row in admin_conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'decision_logs'::regclass ORDER BY c.relname"
        )
    ]
    this_month = datetime.now(UTC).strftime("decision_logs_y%Ym%m")
    assert this_month in partitions
    assert "decision_logs_default" in partitions
    assert len(partitions) >= 6  # default + last month + this month + 3 ahead
    for name in partitions:
        for role in ("acgs2_app", "acgs2_projector"):
            grants = admin_conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT')", [role, name]
            ).fetchone()
            assert grants == (False,), (role, name)


def test_denied_decisions_are_audited_as_governance_events(
    system: System,
    recorders: Callable[..., DecisionRecorder],
    admin_conn: psycopg.Connection[Any],
    unique: str,
) -> None:
    tenant = system.tenants.create(
        PLATFORM,
        CreateTenant(f"Audited {unique}", f"audited-{unique}", "admin@audited.example.com"),
    ).id
    recorder = recorders()
    allowed, denied = _record(tenant), _record(tenant, allow=False)
    recorder.record(allowed)
    recorder.record(denied)
    recorder.flush()
    system.runner("audit_log").catch_up()
    rows = admin_conn.execute(
        "SELECT event_category, result, details->>'decision_id', details->'deny' "
        "FROM tenant_audit_log WHERE tenant_id = %s AND action = 'policy_decision'",
        [tenant],
    ).fetchall()
    assert rows == [("governance", "denied", str(denied.decision_id), ["no"])]
    assert recorder.audit_failures == 0


def test_every_value_is_stored_as_given_escapes_and_all(
    recorders: Callable[..., DecisionRecorder], admin_conn: psycopg.Connection[Any]
) -> None:
    """The batch goes to the database as COPY text: values holding the format's delimiters and
    escapes (tab, newline, carriage return, backslash), quotes and non-ASCII come back equal."""
    tenant = uuid4()
    awkward = 'a\tb\nc\rd\\e"f\\\\n é ✓ \\N'
    policy = ActivePolicy(uuid4(), f"key {awkward}", 7, "acgs.policies.x", "", system_wide=True)
    obligation = {"notify": awkward, "nested": {"list": [1, 2.5, None, True, awkward]}}
    record = DecisionRecord(
        decision_id=uuid4(),
        tenant_id=tenant,
        policy=policy,
        input_sha256="b" * 64,
        input={"user": {"name": awkward, "ssn": "***"}, "n": 12345678901, "x": -0.125},
        decision=Decision(
            allow=False,
            deny=frozenset({awkward, "plain"}),
            obligations=frozenset({canonical_text(obligation)}),
        ),
        latency_ms=0.000123,
        actor=Actor(f"sub {awkward}"),
        constitutional_hash="cdd01ef066bc6cf2",
        decided_at=datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
    )
    recorder = recorders()
    recorder.record(record)
    recorder.record(_record(tenant))  # a second row after the awkward one
    assert recorder.flush() == 2
    row = admin_conn.execute(
        "SELECT decision_id, tenant_id, policy_id, policy_key, policy_version, system_wide, "
        "input_sha256, input, allow, deny, obligations, latency_ms, principal, "
        "constitutional_hash, decided_at FROM decision_logs WHERE decision_id = %s",
        [record.decision_id],
    ).fetchone()
    assert row == (
        record.decision_id,
        tenant,
        policy.policy_id,
        policy.policy_key,
        7,
        True,
        "b" * 64,
        record.input,
        False,
        sorted([awkward, "plain"]),
        [obligation],
        0.000123,
        record.actor.sub,
        "cdd01ef066bc6cf2",
        record.decided_at,
    )
    assert _count(admin_conn, tenant) == 2
