"""The `shadow_mode` job kind through the migration-job port: imported legacy decisions replayed
batch by batch, cumulative outcomes, exact counts after a crash and a re-claim, alerts once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from api.bootstrap import System, shadow_replay_kind
from commands.migration_kinds import JobContext, JobSource
from commands.shadow_replay import FAILED_ITEMS_PER_BATCH, ShadowReplayKind
from domain.errors import ValidationFailed
from domain.maci import MaciRole
from tests.integration.shadow.support import HASH, ShadowTenant, shadow_tenant
from tests.integration.spine.support import catch_up

pytestmark = [pytest.mark.postgres, pytest.mark.rego]

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def tenant(system: System, unique: str) -> ShadowTenant:
    return shadow_tenant(system, f"replay-{unique}")


@pytest.fixture
def kind(system: System) -> ShadowReplayKind:
    return shadow_replay_kind(system)


def _import(
    admin: psycopg.Connection[Any], tenant: UUID, rows: list[tuple[str, bool, dict[str, Any]]]
) -> UUID:
    """Imported rows (role, legacy allow, context), one a minute from START; the import job id."""
    job = uuid4()
    with admin.cursor() as cur:
        cur.executemany(
            "INSERT INTO decision_logs (decision_id, tenant_id, policy_id, policy_key, "
            "policy_version, input_sha256, allow, deny, obligations, latency_ms, principal, "
            "constitutional_hash, decided_at, origin, action, resource, context, import_job_id, "
            "dedup_key, content_sha256) "
            "VALUES (%s, %s, %s, 'legacy', 0, %s, %s, '[]', '[]', %s, %s, %s, %s, 'imported', "
            "'read', %s, %s, %s, %s, %s)",
            [
                (
                    uuid4(),
                    tenant,
                    uuid4(),
                    "0" * 64,
                    allow,
                    1.5,
                    f"user-{n}",
                    HASH,
                    START + timedelta(minutes=n),
                    f"doc-{n}",
                    Jsonb({**context, "role": role}),
                    job,
                    sha256(f"{job}:{n}".encode()).hexdigest(),  # one key per row
                    sha256(f"{role}:{allow}:{context}".encode()).hexdigest(),
                )
                for n, (role, allow, context) in enumerate(rows)
            ],
        )
    return job


# Imported principals are plain ids ({"id": ...} in the input): the Rego reads the role from
# the context then.
def _rows(
    agree: int, missed: int, extra: int, errors: int
) -> list[tuple[str, bool, dict[str, Any]]]:
    rows: list[tuple[str, bool, dict[str, Any]]] = []
    rows += [("owner", True, {}) if i % 2 else ("guest", False, {}) for i in range(agree)]
    rows += [("guest", True, {})] * missed
    rows += [("owner", False, {})] * extra
    rows += [("owner", True, {"fail": True})] * errors
    return rows


def _job(
    tenant: ShadowTenant, kind: ShadowReplayKind, tmp_path: Path, job_id: UUID, **params: Any
) -> JobContext:
    return JobContext(
        tenant_id=tenant.id,
        job_id=job_id,
        kind=kind.name,
        parameters=kind.validate(params, None),
        source=None,
        requested_by="ivan",
        checkpoint=None,
        work_dir=tmp_path,
    )


def _drain(cursor: Any) -> Iterator[Any]:
    while (outcome := cursor.next_batch()) is not None:
        yield outcome


def test_a_replay_counts_exactly_batch_by_batch_and_alerts_each_missed_violation(
    system: System,
    kind: ShadowReplayKind,
    tenant: ShadowTenant,
    tmp_path: Path,
    admin_conn: psycopg.Connection[Any],
) -> None:
    import_job = _import(admin_conn, tenant.id, _rows(200, 20, 25, 5))
    _import(admin_conn, tenant.id, _rows(7, 0, 0, 0))  # another import, not replayed
    job = _job(
        tenant,
        kind,
        tmp_path,
        uuid4(),
        policy_id="documents",
        batch_size=100,
        import_job_id=str(import_job),
    )
    cursor = kind.open(job)
    assert cursor.total == 250

    outcomes = list(_drain(cursor))

    assert [o.processed for o in outcomes] == [100, 200, 250]
    final = outcomes[-1].summary
    assert final["decisions"] == 250
    assert final["agreements"] == 200
    assert final["agreement_rate"] == 0.8
    assert final["disagreements"] == {
        "legacy_allow_rego_deny": 20,
        "legacy_deny_rego_allow": 25,
        "rego_error": 5,
    }
    assert sum(len(o.failed) for o in outcomes) == 5
    assert final["failed_items"] == 5  # the runner's count of failed items
    assert "divide by zero" in outcomes[-1].failed[0].error
    assert outcomes[1].summary["decisions"] == 200  # cumulative, not per batch
    report = kind.report(job, final)
    # hourly, by the legacy decisions' own times (one a minute from 09:00): 200 agreements,
    # then 20 missed, 25 extra, 5 errors
    assert report["agreement_series"] == [
        ["2026-11-02T09:00:00+00:00", 1.0],
        ["2026-11-02T10:00:00+00:00", 1.0],
        ["2026-11-02T11:00:00+00:00", 1.0],
        ["2026-11-02T12:00:00+00:00", round(20 / 60, 6)],
        ["2026-11-02T13:00:00+00:00", 0.0],
    ]
    assert kind.shadow.metrics.tally(tenant.id).total == 250
    catch_up(system)
    alerts = admin_conn.execute(
        "SELECT count(*), min(actor_id) FROM tenant_audit_log WHERE tenant_id = %s "
        "AND action = 'shadow_missed_violation'",
        [tenant.id],
    ).fetchone()
    assert alerts == (20, "ivan")


def test_every_rego_error_counts_as_failed_though_only_the_first_of_a_batch_are_listed(
    kind: ShadowReplayKind,
    tenant: ShadowTenant,
    tmp_path: Path,
    admin_conn: psycopg.Connection[Any],
) -> None:
    _import(admin_conn, tenant.id, _rows(0, 0, 0, 30))
    job = _job(tenant, kind, tmp_path, uuid4(), policy_id="documents", batch_size=100)

    [outcome] = list(_drain(kind.open(job)))

    assert len(outcome.failed) == FAILED_ITEMS_PER_BATCH
    assert outcome.summary["failed_items"] == outcome.summary["errors"] == 30


def test_a_reclaimed_job_resumes_after_its_last_batch_without_counting_twice(
    system: System,
    kind: ShadowReplayKind,
    tenant: ShadowTenant,
    tmp_path: Path,
    admin_conn: psycopg.Connection[Any],
) -> None:
    _import(admin_conn, tenant.id, _rows(100, 10, 0, 0))
    job = _job(tenant, kind, tmp_path, uuid4(), policy_id="documents", batch_size=40)
    first = kind.open(job)
    assert first.next_batch().processed == 40  # type: ignore[union-attr]
    first.close()  # the worker dies here

    again = kind.open(job)  # a re-claim, with or without the runner's checkpoint
    rest = list(_drain(again))

    assert [o.processed for o in rest] == [80, 110]
    assert rest[-1].summary["decisions"] == 110
    assert rest[-1].summary["missed_violations"] == 10
    assert kind.shadow.metrics.tally(tenant.id).total == 110
    assert list(_drain(kind.open(job))) == []  # done: nothing is replayed again
    assert kind.shadow.metrics.tally(tenant.id).total == 110


def test_the_replay_counts_in_the_current_step_of_a_configured_tenant(
    kind: ShadowReplayKind,
    tenant: ShadowTenant,
    tmp_path: Path,
    admin_conn: psycopg.Connection[Any],
) -> None:
    kind.shadow.configure(tenant.ctx("ivan", MaciRole.IMPLEMENTER), tenant.id, "documents", None)
    _import(admin_conn, tenant.id, _rows(1000, 0, 0, 0))
    list(_drain(kind.open(_job(tenant, kind, tmp_path, uuid4()))))  # policy from the config

    stepped = kind.shadow.request_step(tenant.ctx("ivan", MaciRole.IMPLEMENTER), tenant.id, 25)

    assert stepped.percentage == 25


def test_parameters_are_checked_all_at_once(kind: ShadowReplayKind, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        kind.validate(
            {"batch_size": 0, "import_job_id": "nope", "policy_id": "", "color": "red"},
            JobSource(tmp_path / "x.csv", "x.csv"),
        )
    assert {f["field"] for f in invalid.value.details["fields"]} == {
        "parameters.color",
        "source",
        "parameters.policy_id",
        "parameters.batch_size",
        "parameters.import_job_id",
    }
    kept = kind.validate({"shadow_mode_days": 14}, None)
    assert kept == {
        "shadow_mode_days": 14,
        "policy_id": None,
        "batch_size": 1000,
        "import_job_id": None,
    }


def test_an_unconfigured_tenant_needs_a_policy(
    kind: ShadowReplayKind, tenant: ShadowTenant, tmp_path: Path
) -> None:
    with pytest.raises(ValidationFailed):
        kind.open(_job(tenant, kind, tmp_path, uuid4()))
