"""Audit log benchmarks. Run: `python -m tests.load.bench_audit [--rows 1000000]`.

1. Page p99 over the real app (in-process ASGI, the whole edge: token, quotas, routing) with
   1,000,000 audit rows across 1,000 tenants bulk-loaded with COPY over this month and the two
   before it (three partitions): the first page (with its `total`) of a tenant of 1,000 rows
   and of the largest tenant (200,000 rows), and a page 100,000 rows deep in the largest tenant
   by keyset cursor. Target p99 < 20 ms for each.
2. A 10,000-row export per format (json, jsonl, csv, pdf), the export job's whole run (count,
   totals, rows streamed, written, hashed, stored). Target < 1 s each.
3. The token-check route (`GET /v1/tenants/{id}`) with tracing on at 1 % sampling against
   tracing off, alternating rounds in the same process, medians of per-round means. Target:
   overhead < 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import psycopg

from api.bootstrap import System, build
from api.http.app import create_app
from api.settings import Settings
from api.tokens import issue_as_operator
from commands.tenants import CreateTenant
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from infra import tracing
from projections.audit_export import ExportRunner, new_export_id
from projections.audit_queries import encode_cursor
from tests.integration.spine.support import PLATFORM
from tests.load.stats import percentile, summary_ms
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

TARGETS = Targets("bench_audit")
HASH = DEFAULT_CONSTITUTIONAL_HASH
BIG_ROWS = 200_000
EXPORT_ROWS = 10_000
PAGE_P99_MS = 20.0
EXPORT_SECONDS = 1.0
TRACING_OVERHEAD = 0.10
CATEGORIES = ("authentication", "authorization", "governance", "integration", "admin")
RESULTS = ("success", "success", "success", "failure", "denied")


def bulk_load(admin_url: str, rows: int, tenants: int) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """COPY `rows` audit rows: one tenant of BIG_ROWS, one of EXPORT_ROWS, the rest spread
    evenly; times over this month and the two before it. Returns (big, export, small)."""
    ids = [uuid.uuid4() for _ in range(tenants)]
    big, export, small = ids[0], ids[1], ids[2]
    rest = rows - BIG_ROWS - EXPORT_ROWS
    counts = {big: BIG_ROWS, export: EXPORT_ROWS}
    for n, tid in enumerate(ids[2:]):
        counts[tid] = rest // (tenants - 2) + (1 if n < rest % (tenants - 2) else 0)
    now = datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=45)
    span = (now - start).total_seconds()
    rng = random.Random(7)
    started = time.perf_counter()
    with psycopg.connect(admin_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT ensure_audit_partitions(2, 1)")
        cur.executemany(  # the tenants themselves, so the API finds them
            "INSERT INTO tenants (tenant_id, tenant_name, tenant_slug, admin_email) "
            "VALUES (%s, %s, %s, 'a@b.test')",
            [(tid, f"Bench {tid}", f"bench-{tid}") for tid in ids],
        )
        with cur.copy(
            "COPY tenant_audit_log (audit_id, tenant_id, event_type, event_category, actor_id, "
            "actor_type, target_resource, action, result, details, constitutional_hash, "
            "timestamp, chain_seq) FROM STDIN"
        ) as copy:
            buffer = io.StringIO()
            for tid, count in counts.items():
                offsets = sorted(rng.random() * span for _ in range(count))
                for seq, offset in enumerate(offsets, 1):
                    cat = CATEGORIES[seq % 5]
                    at = (start + timedelta(seconds=offset)).isoformat()
                    buffer.write(
                        f"{uuid.uuid4()}\t{tid}\t{cat}.event\t{cat}\tuser-{seq % 50}\tuser\t"
                        f'policy/p{seq % 20}\tact\t{RESULTS[seq % 5]}\t{{"n": {seq}}}\t'
                        f"{HASH}\t{at}\t{seq}\n"
                    )
                if buffer.tell() > 8_000_000:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE tenant_audit_log")  # as autovacuum would have by now
    print(
        f"loaded {rows:,} rows for {tenants:,} tenants with COPY in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return big, export, small


class Client:
    """Calls the ASGI app in this process and event loop, as the server would (no socket, no
    test client's thread hop): what is timed is the service's own work."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def get(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        status, body = [0], []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": urlencode(params).encode(),
            "headers": [(b"authorization", f"Bearer {self.token}".encode()), (b"host", b"b")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status[0], b"".join(body)


async def page_latencies(client: Client, path: str, params: dict[str, str], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        status, body = await client.get(path, params)
        samples.append(time.perf_counter() - started)
        assert status == 200, body
    return samples


def deep_cursor(admin_url: str, tenant_id: uuid.UUID, depth: int) -> str:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "SELECT timestamp, audit_id FROM tenant_audit_log WHERE tenant_id = %s "
            "ORDER BY timestamp DESC, audit_id DESC OFFSET %s LIMIT 1",
            [tenant_id, depth - 1],
        ).fetchone()
    assert row is not None
    return encode_cursor({"timestamp": row[0], "audit_id": row[1]})


async def bench_pages(
    client: Client, admin_url: str, big: uuid.UUID, small: uuid.UUID, n: int
) -> None:
    now = datetime.now(UTC)
    window = {
        "start_time": (now - timedelta(days=120)).isoformat(),
        "end_time": (now + timedelta(days=1)).isoformat(),
        "limit": "100",
    }
    cases = [
        ("first page, tenant of ~800 rows", small, window),
        (f"first page, tenant of {BIG_ROWS:,} rows", big, window),
        (
            "page 100,000 rows deep by cursor",
            big,
            {**window, "after": deep_cursor(admin_url, big, 100_000)},
        ),
        ("first page, filtered (result=denied)", big, {**window, "result": "denied"}),
    ]
    for name, tenant_id, params in cases:
        path = f"/v1/tenants/{tenant_id}/audit-log"
        await page_latencies(client, path, params, 20)  # warm
        samples = await page_latencies(client, path, params, n)
        p99 = percentile(samples, 99) * 1000
        verdict = TARGETS.check(
            f"audit page p99 < {PAGE_P99_MS:.0f} ms ({name})", p99 < PAGE_P99_MS
        )
        print(f"  {name:<42} {summary_ms(samples)}  {verdict}")


def bench_exports(system: System, tenant_id: uuid.UUID) -> None:
    runner = ExportRunner(system.projector_conninfo, expire_seconds=3600)
    now = datetime.now(UTC)
    filters = {
        "start_time": (now - timedelta(days=120)).isoformat(),
        "end_time": (now + timedelta(days=1)).isoformat(),
    }
    for fmt in ("json", "jsonl", "csv", "pdf"):
        export_id = new_export_id()
        with psycopg.connect(system.projector_conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO audit_exports (export_id, tenant_id, requested_by, format, filters, "
                "status, started_at) VALUES (%s, %s, 'bench', %s, %s, 'processing', now())",
                [export_id, tenant_id, fmt, psycopg.types.json.Jsonb(filters)],
            )
            started = time.perf_counter()
            runner.run_job(
                conn,
                {"export_id": export_id, "tenant_id": tenant_id, "format": fmt, "filters": filters},
            )
            seconds = time.perf_counter() - started
            row = conn.execute(
                "SELECT status, rows_written, size_bytes FROM audit_exports WHERE export_id = %s",
                [export_id],
            ).fetchone()
        assert row is not None
        assert row[0] == "completed", row
        assert row[1] == EXPORT_ROWS, row
        verdict = TARGETS.check(f"10k-row export < 1 s ({fmt})", seconds < EXPORT_SECONDS)
        print(f"  {fmt:<6} {row[1]:,} rows, {row[2] / 1e6:.2f} MB in {seconds:.3f} s  {verdict}")


async def bench_tracing(client: Client, tenant_id: uuid.UUID, rounds: int) -> None:
    """Alternate short runs with tracing off and on (1 %), so both see the same machine load;
    the figure is the median over the rounds of (median on / median off - 1): medians, because
    on a shared machine a round's mean is swayed by a few requests stalled by other work."""
    path = f"/v1/tenants/{tenant_id}"
    settings = {"off": (0.0, 0.0), "on (1 %)": (0.01, 1.0)}
    all_samples: dict[str, list[float]] = {k: [] for k in settings}
    ratios = []
    await page_latencies(client, path, {}, 200)  # warm
    for _ in range(rounds):
        means = {}
        for name, (ratio, critical) in settings.items():
            tracing.configure(sample_ratio=ratio, critical_ratio=critical)
            samples = await page_latencies(client, path, {}, 200)
            means[name] = statistics.median(samples)
            all_samples[name] += samples
        ratios.append(means["on (1 %)"] / means["off"] - 1)
    tracing.configure(sample_ratio=0.01, critical_ratio=1.0)
    for name in settings:
        print(f"  tracing {name:<9} {summary_ms(all_samples[name])}")
    overhead = statistics.median(ratios)
    verdict = TARGETS.check("tracing overhead < 10 % at 1 % sampling", overhead < TRACING_OVERHEAD)
    print(
        f"  overhead at 1 % sampling: {overhead * 100:+.1f} % (median over {rounds} rounds; "
        f"rounds from {min(ratios) * 100:+.1f} to {max(ratios) * 100:+.1f} %)  {verdict}"
    )


async def run(system: System, admin_url: str, args: argparse.Namespace) -> None:
    big, export, small = bulk_load(admin_url, args.rows, args.tenants)
    app = create_app(system, tenant_cache_seconds=2.0)
    token = issue_as_operator(
        system,
        "bench",
        tenant_id=SYSTEM_TENANT_ID,
        roles=(MaciRole.AUDITOR,),
        sub="bench",
        ttl_seconds=3600,
    ).token
    # The benchmark's principals must not meet their tenants' request quotas.
    unlimited = {"max_requests_per_minute": 1_000_000, "max_concurrent_connections": 100_000}
    system.tenants.update(PLATFORM, SYSTEM_TENANT_ID, unlimited)
    reader = system.tenants.create(
        PLATFORM,
        CreateTenant("Bench reader", f"bench-{uuid.uuid4().hex[:8]}", "b@x.test", quotas=unlimited),
    )
    for runner in system.runners:
        runner.catch_up()
    executive = issue_as_operator(
        system,
        "bench",
        tenant_id=SYSTEM_TENANT_ID,
        roles=(MaciRole.EXECUTIVE,),
        sub="bench",
        ttl_seconds=3600,
    ).token
    await system.database.open()  # what the app's startup hook does
    try:
        client = Client(app, token)
        print(f"1. audit pages ({args.requests} requests each, 100 rows per page):")
        await bench_pages(client, admin_url, big, small, args.requests)
        print(f"2. {EXPORT_ROWS:,}-row exports:")
        bench_exports(system, export)
        client.token = executive
        print(f"3. token-check route GET /v1/tenants/{{id}}, {args.rounds} rounds of 2 x 200:")
        await bench_tracing(client, reader.id, args.rounds)
    finally:
        await system.database.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with (
        scratch_dir("acgs-bench-audit-") as data_dir,
        throwaway_postgres(data_dir / "pg") as (
            _,
            admin_url,
        ),
    ):
        settings = Settings.from_env(
            {
                "ACGS_DATABASE_URL": admin_url,
                "ACGS_DATA_DIR": str(data_dir / "data"),
                "ACGS_LOG_LEVEL": "WARNING",
            }
        )
        system = build(settings, apply_migrations=False)
        try:
            asyncio.run(run(system, admin_url, args))
        finally:
            system.close()
    return TARGETS.exit_status()


if __name__ == "__main__":
    sys.exit(main())
