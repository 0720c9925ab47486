"""Audit retention: each tenant's rows older than its retention (90 days unless set) are removed,
unless the tenant is under legal hold; each purge is itself audited.

A tenant's rows go in chain order, up to its newest expired row (rows are numbered in log order,
which follows time), so what is left is still one unbroken chain: the chain head's anchor moves to
the last removed row. A monthly partition in which every row has expired is detached and dropped
whole (cheap at any size); rows in partitions that are only partly expired are deleted. The
`audit_retention` worker runs a pass at start and every `interval_seconds`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from domain.audit import DEFAULT_RETENTION_DAYS

log = logging.getLogger(__name__)
_PARTITION = re.compile(r"^tenant_audit_log_y(\d{4})m(\d{2})$")
_TENANTS = """
SELECT h.tenant_id, h.anchor_seq, coalesce(s.retention_days, %s), coalesce(s.legal_hold, false)
FROM audit_chain_heads h LEFT JOIN audit_settings s USING (tenant_id)
"""
_NEWEST_EXPIRED = """
SELECT chain_seq, row_hash, timestamp FROM tenant_audit_log
WHERE tenant_id = %s AND timestamp < %s ORDER BY timestamp DESC, audit_id DESC LIMIT 1
"""
PurgeRecorder = Callable[[UUID, dict[str, Any]], None]


def _month_bounds(name: str) -> tuple[date, date] | None:
    match = _PARTITION.match(name)
    if match is None:
        return None
    lower = date(int(match[1]), int(match[2]), 1)
    upper = date(lower.year + lower.month // 12, lower.month % 12 + 1, 1)
    return lower, upper


class RetentionRunner:
    def __init__(
        self,
        conninfo: str,
        record_purge: PurgeRecorder,
        *,
        interval_seconds: float = 6 * 3600,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.conninfo = conninfo
        self.record_purge = record_purge
        self.interval_seconds = interval_seconds
        self.clock = clock

    def run(self, stop: threading.Event) -> None:
        self.purge()
        while not stop.wait(self.interval_seconds):
            self.purge()

    def purge(self, only: Collection[UUID] = ()) -> list[dict[str, Any]]:
        """One pass over every tenant (or those in `only`); returns what was purged, per tenant."""
        now = self.clock()
        done: list[dict[str, Any]] = []
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            plans: dict[UUID, dict[str, Any]] = {}
            for tenant_id, anchor_seq, days, hold in conn.execute(
                _TENANTS, [DEFAULT_RETENTION_DAYS]
            ).fetchall():
                if (only and tenant_id not in only) or hold:
                    continue
                cutoff = now - timedelta(days=int(days))
                newest = conn.execute(_NEWEST_EXPIRED, [tenant_id, cutoff]).fetchone()
                if newest is None or int(newest[0]) <= int(anchor_seq):
                    continue
                plans[tenant_id] = {
                    "last_seq": int(newest[0]),
                    "last_hash": newest[1],
                    "cutoff": cutoff,
                    "retention_days": int(days),
                }
            if not plans:
                return done
            dropped = self._drop_partitions(conn, plans)
            for tenant_id, plan in plans.items():
                with conn.transaction():
                    deleted = conn.execute(
                        "DELETE FROM tenant_audit_log WHERE tenant_id = %s AND chain_seq <= %s",
                        [tenant_id, plan["last_seq"]],
                    ).rowcount
                    conn.execute(
                        "UPDATE audit_chain_heads SET anchor_seq = %s, anchor_hash = %s "
                        "WHERE tenant_id = %s",
                        [plan["last_seq"], plan["last_hash"], tenant_id],
                    )
                details = {
                    "retention_days": plan["retention_days"],
                    "cutoff": plan["cutoff"].isoformat(),
                    "purged_through_seq": plan["last_seq"],
                    "rows_deleted": deleted + dropped.get(tenant_id, 0),
                    "partitions_dropped": sorted(
                        name
                        for name, tenants in dropped.get("_names", {}).items()
                        if tenant_id in tenants
                    ),
                }
                self.record_purge(tenant_id, details)
                log.info("audit retention purged %s: %s", tenant_id, details)
                done.append({"tenant_id": tenant_id, **details})
        return done

    def _drop_partitions(
        self, conn: psycopg.Connection[Any], plans: dict[UUID, dict[str, Any]]
    ) -> dict[Any, Any]:
        """Drop every monthly partition whose rows have all expired (each of its tenants has a
        plan reaching past its rows). Returns rows dropped per tenant and, under "_names", the
        tenants of each dropped partition."""
        result: dict[Any, Any] = {"_names": {}}
        latest_cutoff = max(p["cutoff"] for p in plans.values())
        names = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'tenant_audit_log'::regclass ORDER BY c.relname"
            ).fetchall()
        ]
        for name in names:
            bounds = _month_bounds(name)
            if bounds is None:
                continue
            lower, upper = (datetime(b.year, b.month, b.day, tzinfo=UTC) for b in bounds)
            if upper > latest_cutoff:
                continue
            tenants = conn.execute(
                "SELECT tenant_id, max(chain_seq), count(*) FROM tenant_audit_log "
                "WHERE timestamp >= %s AND timestamp < %s GROUP BY tenant_id",
                [lower, upper],
            ).fetchall()
            if not tenants or not all(
                t in plans
                and upper <= plans[t]["cutoff"]
                and (seq is None or int(seq) <= plans[t]["last_seq"])
                for t, seq, _ in tenants
            ):
                continue
            if conn.execute("SELECT drop_audit_partition(%s)", [name]).fetchone() == (True,):
                result["_names"][name] = {t for t, _, _ in tenants}
                for t, _, n in tenants:
                    result[t] = result.get(t, 0) + int(n)
        return result
