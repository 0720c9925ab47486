"""Shadow-mode benchmark. Run: `python -m tests.load.bench_shadow [--batches 20]`.

On a throwaway PostgreSQL, a tenant with an active Rego policy and shadow mode configured:

1. Baseline: bare in-process Rego evaluation of the same requests on the cached regorus engine
   (`EngineCache.evaluate_json`, the engine the decision service uses: the compiled machine for a
   converted policy), evaluations/s on one core.
2. Live shadow comparisons as `POST .../shadow/decisions` makes them (`ShadowService.compare_live`
   in batches of 1,000: each decision through `DecisionService.decide`, so logged; compared;
   counted in the durable metrics with one upsert per batch; a missed violation in 200 alerted
   as an audit event; the rollback window fed): decisions/s on one core, and the ratio to (1).
   Target: >= 5,000 shadow evaluations/s per core.
3. Replayed comparisons as a `shadow_mode` job makes them (`evaluate_imported`: the same engines,
   no decision log; counted per batch): decisions/s and the ratio to (1).

Rates are wall-clock on one thread; the machine's load average is printed with them, since other
work on the machine lowers them (the ratios, measured in the same process, move less). The
target of (2) is judged per CPU second of this process (all its threads, the decision-log
writer's included), which other work on the machine does not lower.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.bootstrap import DECISION_LOG, System, build
from api.registry_follower import POLICY_CACHE
from api.settings import Settings
from commands.context import CommandContext, Principal
from commands.policy_intake import SubmitPolicy
from commands.shadow import ShadowService
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.maci import MaciRole
from domain.registry.decision_log import canonical_input
from domain.shadow.comparison import LegacyDecision
from domain.shadow.metrics import Tally
from domain.tenancy import SYSTEM_TENANT_ID
from infra.rego.engine_cache import EngineCache
from tests.integration.shadow.support import SHADOW_REGO
from tests.load.bench_api import _tenant
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

HASH = DEFAULT_CONSTITUTIONAL_HASH
TARGETS = Targets("bench_shadow")
TARGET_PER_CORE = 5_000
BATCH = 1000


def _decisions(batch: int) -> list[LegacyDecision]:
    """1,000 legacy decisions: owners allowed and guests denied, one missed violation in 200."""
    made = []
    for n in range(BATCH):
        owner = n % 2 == 1
        missed = n % 200 == 0
        made.append(
            LegacyDecision(
                principal={"id": f"user-{n % 50}", "role": "owner" if owner else "guest"},
                action="read",
                resource=f"doc-{n % 100}",
                context={"ip": f"10.0.{n % 7}.{n % 250}"},
                allow=owner or missed,
                latency_ms=2.0 + n % 5,
                decision_id=f"b{batch}-{n}",
            )
        )
    return made


def _setup(system: System) -> uuid.UUID:
    tenant = _tenant(system, "bench-shadow", 1_000_000, 1000)
    assert system.policies is not None
    assert system.shadow is not None
    ctx = CommandContext(Principal("bench", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)), HASH)
    system.policies.submit(ctx, tenant, SubmitPolicy(SHADOW_REGO, "rego"))
    system.policies.activate(ctx, tenant, "documents", 1)
    system.shadow.configure(ctx, tenant, "documents", None)
    return tenant


def bench_bare(system: System, tenant: uuid.UUID, batches: int) -> float:
    assert system.decisions is not None
    active = system.decisions.cache.active(tenant, "documents")
    assert active is not None
    texts = [
        canonical_input({**d.document(), "constitutional_hash": HASH}).decode()
        for d in _decisions(0)
    ]
    cache = EngineCache()
    generated = active.generated
    for text in texts[:50]:
        cache.evaluate_json(
            active.cache_key, active.rego, active.package, text, generated=generated
        )
    started = time.perf_counter()
    for _ in range(batches):
        for text in texts:
            cache.evaluate_json(
                active.cache_key, active.rego, active.package, text, generated=generated
            )
    rate = batches * BATCH / (time.perf_counter() - started)
    print(f"1. bare Rego evaluation (cached engine, one core): {rate:,.0f} evaluations/s")
    return rate


def bench_live(shadow: ShadowService, tenant: uuid.UUID, batches: int, bare: float) -> None:
    principal = Principal("bench-implementer", tenant, (MaciRole.IMPLEMENTER,))
    shadow.compare_live(principal, tenant, _decisions(-1))  # warm
    corpora = [_decisions(b) for b in range(batches)]
    started, cpu = time.perf_counter(), time.process_time()
    for corpus in corpora:
        shadow.compare_live(principal, tenant, corpus)
    rate = batches * BATCH / (time.perf_counter() - started)
    per_cpu = batches * BATCH / (time.process_time() - cpu)
    verdict = TARGETS.check(
        f"2. live shadow evaluations >= {TARGET_PER_CORE:,}/s per core", per_cpu >= TARGET_PER_CORE
    )
    print(
        f"2. live shadow comparisons (decide + log + compare + durable metrics + alerts): "
        f"{rate:,.0f} decisions/s wall-clock, {rate / bare:.2f}x bare; {per_cpu:,.0f} per CPU "
        f"second of this process (every thread, the decision-log writer's too); target >= "
        f"{TARGET_PER_CORE:,}/s per core: {verdict}"
    )


def bench_replay(shadow: ShadowService, tenant: uuid.UUID, batches: int, bare: float) -> None:
    corpora = [_decisions(10_000 + b) for b in range(batches)]
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    started = time.perf_counter()
    for corpus in corpora:
        tally = Tally()
        for legacy in corpus:
            compared = shadow.evaluate_imported(tenant, "documents", legacy)
            tally.add(compared.kind, legacy.latency_ms, compared.rego_latency_ms)
        shadow.metrics.add(tenant, 0, {minute: tally})
    rate = batches * BATCH / (time.perf_counter() - started)
    print(
        f"3. replayed comparisons (same engines, unlogged, counted per batch): "
        f"{rate:,.0f} decisions/s per core, {rate / bare:.2f}x bare"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20, help="batches of 1,000 per part")
    args = parser.parse_args()
    with ExitStack() as stack:
        scratch = stack.enter_context(scratch_dir("acgs-bench-shadow-"))
        _, admin_url = stack.enter_context(throwaway_postgres(scratch / "pg"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ACGS_")},
            "ACGS_DATABASE_URL": admin_url,
            "ACGS_DATA_DIR": str(Path(scratch, "data")),
        }
        system = build(Settings.from_env(env), apply_migrations=False)
        stack.callback(system.close)
        tenant = _setup(system)
        system.start_workers([DECISION_LOG, POLICY_CACHE])
        deadline = time.monotonic() + 30
        assert system.decisions is not None
        while not system.decisions.cache.live and time.monotonic() < deadline:
            time.sleep(0.05)
        assert system.shadow is not None
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        bare = bench_bare(system, tenant, args.batches)
        bench_live(system.shadow, tenant, args.batches, bare)
        bench_replay(system.shadow, tenant, args.batches, bare)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return TARGETS.exit_status()


if __name__ == "__main__":
    sys.exit(main())
