"""Spine benchmarks (issue 2). Run: `python -m tests.load.bench_spine` (or `make bench`).

1. Sequential command throughput and latency: tenant creations through TenantCommands (auth,
   hash check, validation, uniqueness claims, tenant-scoped event store) next to a bare
   eventsourcing application saving the same aggregate on the same database, alternating
   rounds in one process. The ratio is the figure (target >= 0.8). Two bare baselines are
   printed: the library's defaults (pipelined inserts) and its faster database-function
   option; our store saves through one database function of its own (`acgs_insert_events`).
2. Projection lag p50/p99 with the runners live while commands arrive (target p99 < 50 ms).
3. The tenants page query (platform session, 50 rows) and the tenant detail query with 1,000
   tenants (target p99 < 5 ms).
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import ClassVar

from eventsourcing.application import Application

from api.bootstrap import build
from api.settings import Settings
from commands.context import CommandContext, Principal
from commands.tenants import CreateTenant
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from domain.tenant.aggregate import Tenant
from projections.tenants import FIND_TENANT, list_tenants
from tests.load.stats import percentile, summary_ms
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

HASH = DEFAULT_CONSTITUTIONAL_HASH
PLATFORM = CommandContext(Principal("bench", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)
ROUNDS, PER_ROUND = 5, 200


class BareApplication(Application[uuid.UUID]):
    name = "bare"
    env: ClassVar[dict[str, str]] = {"PERSISTENCE_MODULE": "eventsourcing.postgres"}


class BareFunctionApplication(Application[uuid.UUID]):
    """The library's faster option: events inserted by a database function."""

    name = "barefn"
    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    }


def bare_env(admin_url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    p = conninfo_to_dict(admin_url)
    return {
        "POSTGRES_DBNAME": str(p["dbname"]),
        "POSTGRES_HOST": str(p["host"]),
        "POSTGRES_PORT": str(p["port"]),
        "POSTGRES_USER": str(p["user"]),
        "POSTGRES_PASSWORD": "",
        "CREATE_TABLE": "y",
    }


TARGETS = Targets("bench_spine")


def main() -> int:
    with scratch_dir("acgs-bench-") as data_dir, throwaway_postgres(data_dir) as (_, url):
        run(url, data_dir)
    return TARGETS.exit_status()


def run(url: str, data_dir: Path) -> None:
    settings = Settings.from_env({"ACGS_DATABASE_URL": url, "ACGS_DATA_DIR": str(data_dir)})
    system = build(settings, apply_migrations=False)
    baselines = {
        "bare app (library defaults)": BareApplication(env=bare_env(url)),
        "bare app (db functions)": BareFunctionApplication(env=bare_env(url)),
    }
    ours_lat: list[float] = []
    ours_time = 0.0
    base_lat: dict[str, list[float]] = {k: [] for k in baselines}
    base_time = dict.fromkeys(baselines, 0.0)
    n = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(PER_ROUND):
            t0 = time.perf_counter()
            system.tenants.create(
                PLATFORM, CreateTenant(f"Bench {n}", f"bench-{n}", f"a{n}@bench.io")
            )
            ours_lat.append(time.perf_counter() - t0)
            n += 1
        ours_time += time.perf_counter() - start
        for label, bare in baselines.items():
            start = time.perf_counter()
            for i in range(PER_ROUND):
                t0 = time.perf_counter()
                tid = uuid.uuid4()
                meta = EventMeta(tid, SYSTEM_ACTOR, HASH)
                bare.save(
                    Tenant.register(
                        tenant_id=tid,
                        name=f"Bare {n} {i}",
                        slug=f"bare-{i}",
                        email="a@bench.io",
                        meta=meta,
                    )
                )
                base_lat[label].append(time.perf_counter() - t0)
            base_time[label] += time.perf_counter() - start
    total = ROUNDS * PER_ROUND
    ours_rate = total / ours_time
    print("== 1. sequential commands (tenant creation), alternating rounds")
    print(f"acgs commands               : {ours_rate:8.1f} commands/s  {summary_ms(ours_lat)}")
    for label in baselines:
        rate = total / base_time[label]
        print(f"{label:28}: {rate:8.1f} commands/s  {summary_ms(base_lat[label])}")
        ratio = ours_rate / rate
        verdict = TARGETS.check(f"1. commands >= 0.8x the {label}", ratio >= 0.8)
        print(f"{'':28}  ratio {ratio:.2f}x (target >= 0.8x: {verdict})")

    print("== 2. projection lag with live runners (commands at ~200/s)")
    lags: list[float] = []
    lock = threading.Lock()

    def record(_name: str, _count: int, lag: float) -> None:
        with lock:
            lags.append(lag)

    for runner in system.runners:
        runner.catch_up()
        runner.on_batch = record
    system.start_workers()
    time.sleep(0.2)
    for i in range(600):
        system.tenants.update(
            PLATFORM, system_tenant_ids(system)[i % 50], {"max_requests_per_minute": 1000 + i}
        )
        time.sleep(0.005)
    deadline = time.monotonic() + 10
    while any(s["events_behind"] for s in system.projection_status(own_only=True)):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    lag_p99 = percentile([x * 1000 for x in lags], 99)
    verdict = TARGETS.check("2. projection lag p99 < 50 ms", bool(lags) and lag_p99 < 50)
    print(f"projection lag: {summary_ms(lags)}  (target p99 < 50 ms: {verdict})")

    print(f"== 3. read-model queries with {total + 1} tenants")
    asyncio.run(query_bench(system))
    system.close()


_ids: list[uuid.UUID] = []


def system_tenant_ids(system: object) -> list[uuid.UUID]:
    if not _ids:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(system.admin_url) as conn:  # type: ignore[attr-defined]
            _ids.extend(
                r[0]
                for r in conn.execute(
                    "SELECT tenant_id FROM tenants WHERE tenant_slug LIKE 'bench-%' LIMIT 50"
                )
            )
    return _ids


async def query_bench(system: object) -> None:
    db = system.database  # type: ignore[attr-defined]
    await db.open()
    ids = system_tenant_ids(system)
    page: list[float] = []
    detail: list[float] = []
    for i in range(3000):
        t0 = time.perf_counter()
        async with db.platform_session() as conn:
            rows, total = await list_tenants(
                conn, status=None, limit=50, offset=random.randrange(0, 950)
            )
        page.append(time.perf_counter() - t0)
        assert len(rows) == 50
        assert total > 1000
        tid = ids[i % len(ids)]
        t0 = time.perf_counter()
        async with db.tenant_session(tid) as conn:
            found = await (await conn.execute(FIND_TENANT, [tid])).fetchone()
        detail.append(time.perf_counter() - t0)
        assert found is not None
    await db.close()
    page_p99 = percentile([x * 1000 for x in page[200:]], 99)
    detail_p99 = percentile([x * 1000 for x in detail[200:]], 99)
    page_verdict = TARGETS.check("3. tenants page query p99 < 5 ms", page_p99 < 5)
    detail_verdict = TARGETS.check("3. tenant detail query p99 < 5 ms", detail_p99 < 5)
    print(f"tenants page (platform, 50 rows): {summary_ms(page[200:])}")
    print(f"    target p99 < 5 ms: {page_verdict}")
    print(f"tenant detail (tenant-scoped)   : {summary_ms(detail[200:])}")
    print(f"    target p99 < 5 ms: {detail_verdict}")


if __name__ == "__main__":
    sys.exit(main())
