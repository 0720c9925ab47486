"""Plain helpers of the spine's integration tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg

from api.bootstrap import System
from commands.context import CommandContext, Principal
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from projections.audit_log import insert_row

HASH = DEFAULT_CONSTITUTIONAL_HASH
PLATFORM = CommandContext(Principal("operator", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)


def catch_up(system: System) -> None:
    for runner in system.runners:
        runner.catch_up()


def seed_audit_rows(
    conninfo: str, tenant_id: UUID, times: list[datetime], **fields: Any
) -> list[dict[str, Any]]:
    """Append audit rows at `times` to a tenant's log as the audit projection writes them (each
    joins the tenant's hash chain), bypassing the event store so a test can place them in any
    month. Returns the records written."""
    written = []
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        for n, at in enumerate(times):
            record = {
                "audit_id": uuid4(),
                "tenant_id": tenant_id,
                "event_type": fields.get("event_type", "seed.recorded"),
                "event_category": fields.get("event_category", "governance"),
                "actor_id": fields.get("actor_id", f"seeder-{n % 3}"),
                "actor_type": "user",
                "target_resource": fields.get("target_resource", "seed"),
                "target_id": None,
                "action": fields.get("action", "seed"),
                "result": fields.get("result", "success"),
                "details": fields.get("details", {"n": n}),
                "constitutional_hash": HASH,
                "constitutional_validation_passed": True,
                "timestamp": at,
            }
            written.append(insert_row(cur, record))
    return written
