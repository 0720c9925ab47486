"""`acgs audit query|export|verify|purge` against the real database."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from api.bootstrap import System
from api.cli.main import cli
from api.settings import Settings
from tests.integration.spine.support import catch_up, seed_audit_rows

pytestmark = pytest.mark.postgres


def _env(settings: Settings) -> dict[str, str]:
    return {
        "ACGS_DATABASE_URL": str(settings.database_url),
        "ACGS_DATA_DIR": str(settings.data_dir),
    }


def _run(settings: Settings, *args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", *args], env=_env(settings))


def test_verify_passes_then_fails_once_a_row_is_edited(
    system: System, settings: Settings, create_tenant: Any, pg_admin_url: str
) -> None:
    tenant = create_tenant()
    seed_audit_rows(system.projector_conninfo, tenant.id, [datetime(2000, 1, 1, tzinfo=UTC)] * 3)
    catch_up(system)
    result = _run(settings, "verify", "--tenant", tenant.tenant_slug)
    assert result.exit_code == 0, result.output
    assert "chain intact: 4 rows, seq 1..4, head 4" in result.output
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tenant_audit_log SET actor_id = 'mallory' "
            "WHERE tenant_id = %s AND chain_seq = 2",
            [tenant.id],
        )
    result = _run(settings, "verify", "--tenant", tenant.tenant_slug, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert report["problems"][0]["kind"] == "altered"
    assert report["problems"][0]["seq"] == 2


def test_verify_needs_a_tenant_or_all(settings: Settings) -> None:
    result = _run(settings, "verify")
    assert result.exit_code == 2
    assert "--tenant SLUG or --all" in result.output


def test_export_writes_the_file_with_its_digest_and_is_audited(
    system: System, settings: Settings, create_tenant: Any, tmp_path: Path
) -> None:
    tenant = create_tenant()
    catch_up(system)
    seed_audit_rows(
        system.projector_conninfo,
        tenant.id,
        [datetime(2000, 2, 1, tzinfo=UTC)] * 5,
        actor_id="=cmd",
    )
    out = tmp_path / "audit.csv"
    result = _run(
        settings,
        "export",
        "--tenant",
        tenant.tenant_slug,
        "--format",
        "csv",
        "--from",
        "2000-01-01",
        "--to",
        "2000-03-01",
        "--output",
        str(out),
    )
    assert result.exit_code == 0, result.output
    content = out.read_bytes()
    assert f"sha256 {hashlib.sha256(content).hexdigest()}" in result.output
    assert content.count(b"'=cmd") == 5
    assert "chain head seq 6" in result.output
    catch_up(system)
    with psycopg.connect(system.projector_conninfo) as conn:
        row = conn.execute(
            "SELECT actor_id, details->>'via' FROM tenant_audit_log "
            "WHERE tenant_id = %s AND action = 'export_audit_log'",
            [tenant.id],
        ).fetchone()
    assert row is not None
    assert row[0].startswith("cli:")
    assert row[1] == "cli"


def test_query_prints_the_rows_and_refuses_bad_filters(
    system: System, settings: Settings, create_tenant: Any
) -> None:
    tenant = create_tenant()
    catch_up(system)
    seed_audit_rows(
        system.projector_conninfo,
        tenant.id,
        [datetime(2000, 5, 1, tzinfo=UTC)] * 2,
        result="denied",
    )
    result = _run(
        settings,
        "query",
        "--tenant",
        tenant.tenant_slug,
        "--from",
        "2000-01-01",
        "--to",
        "2000-12-01",
        "--result",
        "denied",
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(r["chain_seq"] for r in rows) == [2, 3]
    assert {r["result"] for r in rows} == {"denied"}
    bad = _run(
        settings, "query", "--tenant", tenant.tenant_slug, "--result", "maybe", "--from", "soon"
    )
    assert bad.exit_code == 2
    assert "--result" in bad.output
    assert "--start-time" in bad.output or "--from" in bad.output


def test_query_as_text_and_an_unknown_tenant(
    system: System, settings: Settings, create_tenant: Any
) -> None:
    tenant = create_tenant()
    catch_up(system)
    seed_audit_rows(system.projector_conninfo, tenant.id, [datetime(2001, 3, 1, tzinfo=UTC)])
    args = ("query", "--from", "2001-01-01", "--to", "2001-12-01")
    result = _run(settings, *args, "--tenant", str(tenant.id))
    assert result.exit_code == 0, result.output
    [line] = result.output.splitlines()
    assert line.startswith("2001-03-01T00:00:00+00:00")
    unknown = _run(settings, *args, "--tenant", "no-such-tenant")
    assert unknown.exit_code == 1
    assert "no tenant with slug or id 'no-such-tenant'" in unknown.output


def test_verify_all_lists_every_chain_and_names_each_problem(
    system: System, settings: Settings, create_tenant: Any, pg_admin_url: str
) -> None:
    tenant = create_tenant()
    seed_audit_rows(system.projector_conninfo, tenant.id, [datetime(2000, 1, 1, tzinfo=UTC)] * 2)
    catch_up(system)
    every = _run(settings, "verify", "--all")
    assert f"{tenant.id}: chain intact: 3 rows" in every.output, every.output
    assert "verified " in every.output
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tenant_audit_log SET actor_id = 'mallory' "
            "WHERE tenant_id = %s AND chain_seq = 3",
            [tenant.id],
        )
    broken = _run(settings, "verify", "--tenant", tenant.tenant_slug)
    assert broken.exit_code == 1
    assert f"{tenant.id}: chain BROKEN" in broken.output
    assert '"kind": "altered"' in broken.output


def test_replay_refuses_a_start_that_is_neither_a_position_nor_a_time(
    settings: Settings,
) -> None:
    result = _run(settings, "replay", "--tenant", "any", "--from", "soon")
    assert result.exit_code == 2
    assert "--from: a chain position or an ISO 8601 time" in result.output


def test_purge_runs_one_retention_pass_for_one_tenant(
    system: System, settings: Settings, create_tenant: Any
) -> None:
    tenant = create_tenant()
    old = [datetime(2000, 6, 1, tzinfo=UTC), datetime(2000, 6, 2, tzinfo=UTC)]
    seed_audit_rows(system.projector_conninfo, tenant.id, old)  # seq 1 and 2
    catch_up(system)  # the tenant's creation: seq 3
    result = _run(settings, "purge", "--tenant", tenant.tenant_slug)
    assert result.exit_code == 0, result.output
    [line, summary] = result.output.splitlines()
    assert summary == "purged 1 tenant(s)"
    purged = json.loads(line)
    assert purged["tenant_id"] == str(tenant.id)
    assert purged["purged_through_seq"] == 2, purged  # the two rows older than the retention
