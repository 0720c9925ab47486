"""Benchmark: a policy_conversion migration job of a generated corpus, against the bare
conversion of the same files in the same run (same engine, same processes).

The job does what the bare conversion does, plus: its events (claim, lease, progress), reading
the sources batch by batch, and writing every converted policy into the tenant's registry (two
events per policy). Its overhead is printed as the ratio job / bare conversion; the bare
conversion runs before and after the job and the job is compared with their mean, since the load
of a shared machine moves during a run.

Run: `python -m tests.load.bench_migration_jobs [--policies 10000] [--jobs N]`.
Targets: every policy converted and written, counts exact; 10,000 policies in under 60 s; the
job within 1.25x of the bare conversion.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.bootstrap import build
from api.settings import Settings
from api.tokens import operator_context
from commands.migrations import StartJob
from commands.policy_conversion import read_sources, run_conversion
from commands.tenants import CreateTenant
from domain.policy.conversion import ConversionSettings
from domain.policy.limits import DEFAULT_LIMITS
from infra.rego.bounded_engine import BoundedRegoEngine
from tests.load.policy_corpus import corpus
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

MAX_RATIO = 1.25


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    targets = Targets("bench_migration_jobs")
    with (
        scratch_dir("acgs-bench-migration-") as scratch,
        throwaway_postgres(scratch / "pg") as (_, admin_url),
    ):
        sources = scratch / "sources"
        legacy = sources / "legacy"
        legacy.mkdir(parents=True)
        for name, text in corpus(args.policies):
            (legacy / name).write_text(text, encoding="utf-8")
        files = sorted(legacy.iterdir())
        bare_before, bare_cpu_before = _bare_conversion(files, args.jobs)
        settings = Settings.from_env(
            {
                "ACGS_DATABASE_URL": admin_url,
                "ACGS_DATA_DIR": str(scratch / "data"),
                "ACGS_LOG_LEVEL": "WARNING",
                "ACGS_MIGRATION_SOURCE_DIRS": str(sources),
                "ACGS_MIGRATION_CONVERSION_PROCESSES": str(args.jobs),
            }
        )
        system = build(settings, apply_migrations=False)
        try:
            ctx = operator_context(system, "bench")
            tenant = system.tenants.create(
                ctx, CreateTenant("Bench migration", "bench-migration", "b@example.com")
            )
            assert system.migrations is not None
            started, cpu_started = time.perf_counter(), _cpu_seconds()
            job = system.migrations.start(
                ctx,
                tenant.id,
                StartJob("policy_conversion", "Bench", {"policy_file_path": str(legacy)}),
            )
            system.runner("migrations").catch_up()
            ran = system.migration_runner().run_once()
            elapsed = time.perf_counter() - started
            job_cpu = _cpu_seconds() - cpu_started
            done = system.migrations.job(tenant.id, job.id)
        finally:
            system.close()
        bare_after, bare_cpu_after = _bare_conversion(files, args.jobs)
    # The bare conversion runs before and after the job, and the job is compared with their
    # mean: on a shared machine the load moves during a run.
    bare = (bare_before + bare_after) / 2
    summary = done.result_summary or {}
    ratio = elapsed / bare
    print(f"policies: {args.policies} with {args.jobs} conversion processes")
    print(
        f"bare conversion (convert + gate): {bare_before:.2f} s before the job, "
        f"{bare_after:.2f} s after (mean {bare:.2f} s)"
    )
    print(f"migration job (claim, batches, registry writes, events): {elapsed:.2f} s")
    print(f"job / bare conversion: {ratio:.2f}x (overhead {elapsed - bare:.2f} s)")
    bare_cpu = (bare_cpu_before + bare_cpu_after) / 2
    per = 1000 / args.policies
    print(
        f"CPU (this process and its workers, not PostgreSQL): bare {bare_cpu * per:.2f} s per "
        f"1,000 policies ({bare_cpu_before:.1f} s, {bare_cpu_after:.1f} s), job "
        f"{job_cpu * per:.2f} s per 1,000 policies ({job_cpu:.1f} s)"
    )
    print(f"job: {done.status.value}, {done.processed}/{done.total} items, {summary}")
    print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    exact = (
        ran
        and done.status.value == "completed"
        and done.processed == done.total == done.successful == args.policies
        and summary.get("converted_policies") == args.policies
        and summary.get("new_versions") == args.policies
    )
    print(f"every policy converted and written, counts exact: {targets.check('exact', exact)}")
    print(
        f"job within {MAX_RATIO}x of the bare conversion: "
        f"{targets.check(f'job within {MAX_RATIO}x of the bare conversion', ratio <= MAX_RATIO)}"
    )
    if args.policies == 10_000:
        fast = targets.check("10,000-policy job in under 60 s", elapsed < 60)
        print(f"10,000-policy job in {elapsed:.1f} s (target < 60 s): {fast}")
    return targets.exit_status()


def _bare_conversion(files: list[Path], jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of converting `files` with `jobs` processes."""
    limits = DEFAULT_LIMITS
    engine = partial(
        BoundedRegoEngine,
        seconds=limits.evaluation_seconds,
        memory_bytes=limits.evaluation_memory_bytes,
    )
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    run_conversion(read_sources(files), engine, settings=ConversionSettings(), jobs=jobs)
    return time.perf_counter() - started, _cpu_seconds() - cpu_started


def _cpu_seconds() -> float:
    """User and system CPU of this process and of its ended children (the pool's workers, and
    through them their engines' processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())
