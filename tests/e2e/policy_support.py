"""Helpers of the policy registry's tests: submit, activate and decide over real HTTP; run a
gap analysis as a worker would."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from api.bootstrap import System
from commands.context import CommandContext, Principal
from commands.migrations import StartJob
from domain.maci import MaciRole
from domain.migration.job import JobStatus, MigrationJob
from tests.peers.http import HASH

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "legacy_samples"
WRITE = {"X-Constitutional-Hash": HASH}

GUARDED_REGO = """package acgs.custom.{key}

constitutional_hash := "{hash}"

default allow := false

allow if {{
\tinput.constitutional_hash == constitutional_hash
\tinput.user.role == "{role}"
}}

deny contains "constitutional hash mismatch" if input.constitutional_hash != constitutional_hash

deny contains "not {role}" if {{
\tinput.constitutional_hash == constitutional_hash
\tinput.user.role != "{role}"
}}

obligations := set()
"""


def rego(key: str, role: str) -> str:
    return GUARDED_REGO.format(key=key, hash=HASH, role=role)


def submit(
    client: httpx.Client, tenant: UUID | str, source: str, fmt: str = "auto", **extra: Any
) -> httpx.Response:
    body = {"source": source, "format": fmt, "constitutional_hash": HASH, **extra}
    return client.post(f"/v1/tenants/{tenant}/policies", json=body)


def submitted(
    client: httpx.Client, tenant: UUID | str, source: str, fmt: str = "auto", **extra: Any
) -> dict[str, Any]:
    response = submit(client, tenant, source, fmt, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def activate(client: httpx.Client, tenant: UUID | str, key: str, version: int) -> httpx.Response:
    return client.post(
        f"/v1/tenants/{tenant}/policies/{key}/activate",
        json={"version": version},
        headers=WRITE,
    )


def decide(
    client: httpx.Client, tenant: UUID | str, key: str, document: dict[str, Any]
) -> httpx.Response:
    return client.post(
        f"/v1/tenants/{tenant}/decisions", json={"policy_id": key, "input": document}
    )


def decide_batch(
    client: httpx.Client, tenant: UUID | str, requests: list[tuple[str, dict[str, Any]]]
) -> httpx.Response:
    body = {"requests": [{"policy_id": key, "input": doc} for key, doc in requests]}
    return client.post(f"/v1/tenants/{tenant}/decisions", json=body)


def run_gap_analysis(system: System, tenant: UUID | str, **parameters: Any) -> UUID:
    """One gap_analysis migration job over the tenant's registered policies, started as a
    LEGISLATIVE principal of the tenant and run by the deployment's migration runner; returns
    the run's (the job's) id."""
    for runner in system.runners:
        runner.catch_up()
    tenant_id = UUID(str(tenant))
    assert system.migrations is not None
    author = CommandContext(Principal("gap-analyst", tenant_id, (MaciRole.LEGISLATIVE,)), HASH)
    job = system.migrations.start(author, tenant_id, StartJob("gap_analysis", "tests", parameters))
    assert system.migration_runner().run_job(tenant_id, job.id, threading.Event())
    done = system.app.load(tenant_id, job.id, MigrationJob)
    assert done.status is JobStatus.COMPLETED, done.error_details
    return job.id
