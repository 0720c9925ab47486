"""Benchmark: a gap_analysis job over a tenant's registered policies, driven through the job port
as a worker drives it, against the bare catalogue over the same versions in the same process.

Run: `python -m tests.load.bench_gap_analysis [--policies 1000] [--batch 100]`.

The tenant's policies are registered as one DSL submission (the bulk case: every version keeps
the whole submitted source, so the run meets one large source once per policy). The baseline is
`version_gaps` over the same versions held in memory (read once, outside the timing): the
catalogue alone. The job adds reading the registry per batch, recording every gap, the run's
tally, its completion and an audit entry per critical gap opened (a third of the corpus opens
two each). Targets: a 1,000-policy run in < 10 s (a conversion job's budget is 60 s for 10,000),
and the job at >= 0.25x the bare catalogue's policies/s: recording at most triples the work.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.bootstrap import System, build
from api.settings import Settings
from commands.context import CommandContext, Principal
from commands.migration_kinds import JobContext
from commands.policy_intake import SubmitPolicy
from commands.tenants import CreateTenant
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.policy.gaps.tracking import GapScope, SourceModels, version_gaps
from domain.tenancy import SYSTEM_TENANT_ID
from infra.postgres.gap_ledger import PostgresGapLedger
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

HASH = DEFAULT_CONSTITUTIONAL_HASH
TARGETS = Targets("bench_gap_analysis")
SHAPES = (
    "POLICY open-{n}\nDEFAULT allow\nRULE anyone-reads\n  THEN ALLOW\n",
    "POLICY payroll-{n}\nRULE payroll-read\n"
    '  WHEN resource.type == "payroll" AND action == "read"\n  THEN ALLOW\n'
    'RULE clerk-proposes\n  WHEN user.role == "clerk" AND action IN ["propose", "approve"]\n'
    "  THEN ALLOW\n",
    "POLICY clean-{n}\nDEFAULT deny\nRULE analysts-read\n"
    '  WHEN user.role == "analyst" AND action == "read" AND context.time < resource.expires_at\n'
    "  THEN ALLOW\n  OBLIGE audit\n",
)


def _registered(system: System, policies: int) -> uuid.UUID:
    platform = CommandContext(Principal("bench", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)
    tenant = system.tenants.create(
        platform, CreateTenant("Bench gaps", "bench-gaps", "bench@example.com")
    )
    source = "\n".join(SHAPES[n % len(SHAPES)].format(n=n) for n in range(policies))
    assert system.policies is not None
    started = time.perf_counter()
    done = system.policies.submit(platform, tenant.id, SubmitPolicy(source, "dsl"))
    for runner in system.runners:
        runner.catch_up()
    print(
        f"setup: {len(done.versions)} policies registered in one submission "
        f"({len(source) / 1024:.0f} KiB of DSL) in {time.perf_counter() - started:.1f} s"
    )
    return tenant.id


def _job(tenant: uuid.UUID, batch: int, work_dir: Path) -> JobContext:
    return JobContext(
        tenant_id=tenant,
        job_id=uuid.uuid4(),
        kind="gap_analysis",
        parameters={"scope": GapScope.LATEST.value, "batch_size": batch},
        source=None,
        requested_by="bench",
        checkpoint=None,
        work_dir=work_dir,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    with ExitStack() as stack:
        scratch = stack.enter_context(scratch_dir("acgs-bench-gaps-"))
        _, admin_url = stack.enter_context(throwaway_postgres(scratch / "pg"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ACGS_")},
            "ACGS_DATABASE_URL": admin_url,
            "ACGS_DATA_DIR": str(scratch / "data"),
        }
        system = build(Settings.from_env(env), apply_migrations=False)
        stack.callback(system.close)
        tenant = _registered(system, args.policies)

        ledger = PostgresGapLedger(system.app_conninfo)
        versions = ledger.versions(tenant, GapScope.LATEST, "", args.policies)
        started = time.perf_counter()
        models = SourceModels()
        bare_gaps = sum(len(version_gaps(tenant, v, models)) for v in versions)
        bare = time.perf_counter() - started
        bare_rate = len(versions) / bare

        kind = system.gap_analysis_kind()
        job = _job(tenant, args.batch, scratch)
        started = time.perf_counter()
        cursor = kind.open(job)
        last = None
        while (outcome := cursor.next_batch()) is not None:
            last = outcome
        elapsed = time.perf_counter() - started
        assert last is not None
        job_rate = last.processed / elapsed
        ratio = job_rate / bare_rate
        print(
            f"bare catalogue: {len(versions)} versions, {bare_gaps} gaps in {bare:.2f} s "
            f"({bare_rate:,.0f} policies/s)"
        )
        print(
            f"gap_analysis job (batches of {args.batch}): {last.processed} policies, "
            f"{last.summary['gaps_found']} gaps, score {last.summary['score']} in {elapsed:.2f} s "
            f"({job_rate:,.0f} policies/s); load average {os.getloadavg()[0]:.2f}"
        )
        print(f"job / bare: {ratio:.2f}x  {TARGETS.check('job >= 0.25x bare', ratio >= 0.25)}")
        per_thousand = elapsed / last.processed * 1000
        print(
            f"per 1,000 policies: {per_thousand:.2f} s  "
            f"{TARGETS.check('1,000 policies < 10 s', per_thousand < 10)}"
        )
        if last.summary["gaps_found"] != bare_gaps:
            TARGETS.check("the job finds what the bare catalogue finds", passed=False)
    return TARGETS.exit_status()


if __name__ == "__main__":
    sys.exit(main())
