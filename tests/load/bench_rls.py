"""Row-level security profiling. Run: `python -m tests.load.bench_rls [--rows 1000000]`.

The tenant queries the API runs most, with `--rows` audit rows across `--tenants` tenants
bulk-loaded with COPY (as bench_audit does), each timed three ways in the same run, request by
request in turn so the machine's load falls on all three alike:

- `rls`: the application role in a tenant-scoped transaction (the tenant set with
  `set_config('app.current_tenant_id', ...)`), the statement without a tenant predicate: the
  tenant comes from the row-level security policy alone;
- `app`: the same role and scope, the statement as the service sends it (the tenant named
  in the WHERE clause too);
- `bare`: the baseline: the same statement with the tenant in its WHERE clause, run by the
  superuser, to whom row-level security does not apply.

Queries: the audit log's first page (count up to 1,000 and 100 rows, newest first, the
service's own `audit_page`) of a small tenant and of the largest one (200,000 rows), a keyset
page of the largest, and the tenant row (`FIND_TENANT`). Each plan is printed (EXPLAIN of the
`rls` form) and checked to use an index, never a sequential scan of the log.

Targets: for every query, the `rls` and `app` medians within 1.5x of `bare`; no sequential
scan of tenant_audit_log in any `rls` plan.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from psycopg import AsyncClientCursor, AsyncConnection
from psycopg.rows import DictRow, dict_row

from infra.postgres.database import APP_ROLE, SET_TENANT, Database, role_conninfo
from projections.audit_queries import AuditFilters, Statements, audit_page, encode_cursor
from projections.tenants import FIND_TENANT
from tests.load.bench_audit import bulk_load
from tests.load.stats import percentile
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

TARGETS = Targets("bench_rls")
MAX_RATIO = 1.5
Sets = Callable[[Statements], Awaitable[list[list[Any]]]]
Query = Callable[[Sets, uuid.UUID | None], Awaitable[Any]]


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=120), now + timedelta(days=1)


def first_page(tenant_id: uuid.UUID) -> Query:
    start, end = _window()

    async def page(fetch_sets: Sets, named: uuid.UUID | None) -> Any:
        filters = AuditFilters(start_time=start, end_time=end, tenant_id=named)
        found = await audit_page(fetch_sets, filters, limit=100)
        return len(found.rows), found.total

    return page


def keyset_page(after: str) -> Query:
    start, end = _window()

    async def page(fetch_sets: Sets, named: uuid.UUID | None) -> Any:
        filters = AuditFilters(start_time=start, end_time=end, tenant_id=named)
        found = await audit_page(fetch_sets, filters, limit=100, after=after)
        return len(found.rows), found.rows[0]["audit_id"]

    return page


def tenant_row(tenant_id: uuid.UUID) -> Query:
    async def row(fetch_sets: Sets, named: uuid.UUID | None) -> Any:
        (rows,) = await fetch_sets([(FIND_TENANT, [tenant_id])])
        return [r["tenant_id"] for r in rows]

    return row


def bare_sets(conn: AsyncConnection[DictRow]) -> Sets:
    """`Database.fetch_sets` without its scope, on the superuser's connection: the statements
    in one simple-protocol message, parameters bound client-side."""

    async def fetch(statements: Statements) -> list[list[Any]]:
        cur = AsyncClientCursor(conn, row_factory=dict_row)
        params = [value for _, values in statements for value in values]
        await cur.execute("; ".join(sql for sql, _ in statements), params)
        results = [await cur.fetchall()]
        for _ in statements[1:]:
            cur.nextset()
            results.append(await cur.fetchall())
        return results

    return fetch


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def profile(
    database: Database,
    bare: AsyncConnection[DictRow],
    name: str,
    tenant_id: uuid.UUID,
    query: Query,
    requests: int,
) -> None:
    async def scoped(statements: Statements) -> list[list[Any]]:
        return await database.fetch_sets(tenant_id, statements)

    async def rls() -> Any:
        return await query(scoped, None)

    async def named() -> Any:
        return await query(scoped, tenant_id)

    async def baseline() -> Any:
        return await query(bare_sets(bare), tenant_id)

    forms = {"rls": rls, "app": named, "bare": baseline}
    samples: dict[str, list[float]] = {form: [] for form in forms}
    answers = {form: await call() for form, call in forms.items()}  # warm, and compared
    if len({repr(a) for a in answers.values()}) != 1:
        raise AssertionError(f"{name}: the three forms disagree: {answers}")
    for _ in range(requests):
        for form, call in forms.items():
            samples[form].append(await _timed(call))
    base = statistics.median(samples["bare"])
    print(f"  {name}:")
    for form, values in samples.items():
        ms = [v * 1000 for v in values]
        ratio = statistics.median(values) / base
        line = (
            f"    {form:4}  p50 {percentile(ms, 50):7.3f} ms  p99 {percentile(ms, 99):7.3f} ms"
            f"  {len(values) / sum(values):8,.0f} queries/s  median / bare {ratio:5.2f}x"
        )
        if form != "bare":
            target = f"{name}: {form} within {MAX_RATIO}x of bare"
            line += f"  (target <= {MAX_RATIO}x) {TARGETS.check(target, ratio <= MAX_RATIO)}"
        print(line)


async def plans(app: AsyncConnection[DictRow], tenant_id: uuid.UUID) -> None:
    """EXPLAIN of the audit page's row statement in its `rls` form."""
    start, end = _window()
    where, params = AuditFilters(start_time=start, end_time=end).where()
    sql = (
        "SELECT audit_id FROM tenant_audit_log"
        f"{where} ORDER BY timestamp DESC, audit_id DESC LIMIT 101"
    )
    async with app.transaction():
        await app.execute(SET_TENANT, [str(tenant_id)])
        cur = await app.execute(f"EXPLAIN {sql}", params)  # type: ignore[arg-type]
        plan = [str(row["QUERY PLAN"]) for row in await cur.fetchall()]
    print("  plan of the audit page's rows (rls form):")
    for line in plan:
        print(f"    {line}")
    # The empty default partition may be scanned; a month of the log must not be.
    seq = [line for line in plan if "Seq Scan on tenant_audit_log_y" in line]
    verdict = TARGETS.check("no sequential scan of a month of tenant_audit_log", not seq)
    print(f"  no sequential scan of a month of the log: {verdict}")


async def run(admin_url: str, args: argparse.Namespace) -> None:
    big, _, small = bulk_load(admin_url, args.rows, args.tenants)
    database = Database(role_conninfo(admin_url, APP_ROLE), pool_size=1)
    await database.open()
    app = await AsyncConnection.connect(
        role_conninfo(admin_url, APP_ROLE), row_factory=dict_row, autocommit=True
    )
    bare = await AsyncConnection.connect(admin_url, row_factory=dict_row, autocommit=True)
    try:
        start, end = _window()
        deep = await audit_page(
            bare_sets(bare),
            AuditFilters(start_time=start, end_time=end, tenant_id=big),
            limit=100,
            offset=args.deep,
        )
        cursor = encode_cursor(deep.rows[-1])
        await plans(app, small)
        print(f"queries ({args.requests} of each form, in turn):")
        queries = (
            ("audit first page, a tenant of ~800 rows", small, first_page(small)),
            ("audit first page, the tenant of 200,000 rows", big, first_page(big)),
            (f"audit keyset page {args.deep:,} rows deep", big, keyset_page(cursor)),
            ("tenant row", small, tenant_row(small)),
        )
        for name, tenant_id, query in queries:
            await profile(database, bare, name, tenant_id, query, args.requests)
    finally:
        await app.close()
        await bare.close()
        await database.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--deep", type=int, default=100_000)
    args = parser.parse_args()
    with (
        scratch_dir("acgs-bench-rls-") as data_dir,
        throwaway_postgres(data_dir / "pg") as (_, admin_url),
    ):
        asyncio.run(run(admin_url, args))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return TARGETS.exit_status()


if __name__ == "__main__":
    sys.exit(main())
