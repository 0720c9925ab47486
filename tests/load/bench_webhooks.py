"""Webhook delivery benchmark. Run: `python -m tests.load.bench_webhooks`.

Everything runs on this machine: an embedded PostgreSQL and the independent stdlib receiver of
the tests (tests/e2e/webhook_receiver.py, verifying every signature) in a process of its own on
127.0.0.1 (allow-listed for the run, as an operator would).

The webhook path: `integration.health_changed` events recorded in the log, then one webhook
runner follows the log and delivers each as its own signed POST (resolve and check the target,
sign, POST to the checked address, log the attempt, advance the position). Baseline, in the same
process against the same receiver: a bare httpx client POSTing the same number of bodies of the
same size, built and signed before the clock starts, half before the webhook run and half after
(so a change in the machine's load weighs on both). The ratio is what the webhook path adds to
one POST per event; target >= 0.5x the bare client.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from api.bootstrap import System, build
from api.settings import Settings
from commands.context import CommandContext, Principal
from commands.integrations import CreateIntegration
from commands.tenants import CreateTenant
from commands.webhooks import RegisterWebhook
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.integration.values import HealthStatus
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from tests.load.targets import Targets
from tests.peers.postgres import throwaway_postgres
from tests.peers.scratch import scratch_dir

TARGETS = Targets("bench_webhooks")
SECRET = "whsec_bench-secret-0123456789"
RATIO_TARGET = 0.5


class ReceiverProcess:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.webhook_receiver", SECRET],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.base = self.url.split("/hooks/")[0]

    def counts(self) -> dict[str, int]:
        answer: dict[str, int] = httpx.get(f"{self.base}/_received", timeout=30).json()
        return answer

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _events(system: System, count: int) -> tuple[uuid.UUID, int]:
    """A tenant with `count` integration.health_changed events; the size of one delivery."""
    ctx = CommandContext(
        Principal("bench", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)),
        system.settings.constitutional_hash,
    )
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    tenant = system.tenants.create(
        ctx, CreateTenant(f"Bench {slug}", slug, f"a@{slug}.example.com")
    )
    assert system.integrations is not None
    config = {"bootstrap_servers": ["127.0.0.1:9"]}
    integration = system.integrations.create(
        ctx, tenant.id, CreateIntegration("kafka", "Bench", config)
    )
    meta = EventMeta(tenant.id, SYSTEM_ACTOR, system.settings.constitutional_hash)
    statuses = (HealthStatus.UNHEALTHY, HealthStatus.HEALTHY)
    for start in range(0, count, 500):
        for n in range(start, min(count, start + 500)):
            integration.record_health(statuses[n % 2], f"check {n}", meta)
        system.app.save_for(tenant.id, integration)
    return tenant.id, 900


def _bare(url: str, count: int, size: int) -> float:
    """POST `count` signed bodies of `size` bytes (built before the clock) with a bare client."""
    bodies = []
    for n in range(count):
        body = (b'{"n":%d,"pad":"' % n).ljust(size - 2, b"x") + b'"}'
        stamp = int(time.time())
        mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-ACGS-Signature": f"t={stamp},v1={mac}"}
        bodies.append((body, headers))
    with httpx.Client(timeout=10) as client:
        started = time.perf_counter()
        for body, headers in bodies:
            assert client.post(url, content=body, headers=headers).status_code == 200
        return time.perf_counter() - started


def run(system: System, receiver: ReceiverProcess, count: int) -> None:
    tenant_id, size = _events(system, count)
    assert system.webhooks is not None
    ctx = CommandContext(
        Principal("bench", SYSTEM_TENANT_ID, (MaciRole.EXECUTIVE,)),
        system.settings.constitutional_hash,
    )
    webhook, _ = system.webhooks.create(
        ctx,
        tenant_id,
        RegisterWebhook(receiver.url, ["integration.health_changed"], secret=SECRET),
    )
    for runner in system.runners:
        runner.catch_up()
    first_half = _bare(receiver.url, count // 2, size)  # half before, half after: the
    before = receiver.counts()  # machine's drift (other work on it) weighs on both sides
    runner = system.webhook_runner(tenant_id, webhook.id)
    try:
        started = time.perf_counter()
        runner.catch_up()
        took = time.perf_counter() - started
    finally:
        runner.close()
    after = receiver.counts()
    baseline = first_half + _bare(receiver.url, count - count // 2, size)
    delivered = after["received"] - before["received"]
    verified = after["verified"] - before["verified"]
    assert delivered == count, (delivered, count)
    assert verified == count, (verified, count)
    rate, bare = count / took, count / baseline
    ratio = rate / bare
    verdict = TARGETS.check(
        f"webhook deliveries >= {RATIO_TARGET}x the bare client", ratio >= RATIO_TARGET
    )
    print(
        f"webhook deliveries {rate:>8,.0f}/s ({count} in {took:.2f} s, every signature verified)"
        f"   bare client {bare:>8,.0f}/s   ratio {ratio:.2f}x   target >= {RATIO_TARGET}x "
        f"{verdict}   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    with scratch_dir("acgs-bench-webhooks-") as work, throwaway_postgres(work / "pg") as (_, url):
        settings = Settings.from_env(
            {
                "ACGS_DATABASE_URL": url,
                "ACGS_DATA_DIR": str(work),
                "ACGS_WEBHOOK_ALLOWED_TARGETS": "127.0.0.1",
            }
        )
        system = build(settings, apply_migrations=False)
        receiver = ReceiverProcess()
        try:
            print(f"== webhook deliveries to a local receiver ({args.events} events)")
            run(system, receiver, args.events)
        finally:
            receiver.stop()
            system.close()
    return TARGETS.exit_status()


if __name__ == "__main__":
    sys.exit(main())
