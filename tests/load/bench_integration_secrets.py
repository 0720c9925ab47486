"""Integration secrets benchmark. Run: `python -m tests.load.bench_integration_secrets` (or
`make bench`).

Encrypt + decrypt of one configuration with the local key provider: every secret field of an
integration's configuration sealed (AES-256-GCM under its data key, the field path as associated
data) and opened again, as a command and a connectivity test do, with the data key cached as in
the steady state (target p99 < 1 ms). Printed beside it, not a target: the same with a cold
cache (the data key unwrapped from the tenant's key file first), and a whole LDAP configuration
validated, sealed and opened (`Integration.register` + `clear_config`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID, uuid4

from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.events import SYSTEM_ACTOR, EventMeta
from domain.integration.aggregate import Integration, secret_path
from domain.integration.schemas import SIEM
from infra.keys.envelope import EnvelopeSealer
from infra.keys.local_file import LocalKeyFile
from infra.memory.data_keys import InMemoryDataKeys
from tests.load.stats import percentile, summary_ms
from tests.load.targets import Targets

ROUNDS = 20_000
COLD_ROUNDS = 500
# A configuration with several secrets (a Sentinel SIEM sink has the most of any type).
CONFIG = {
    "kind": "sentinel",
    "url": "https://dce.monitor.azure.com",
    "tenant_directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "client_id": "00000000-0000-0000-0000-000000000001",
    "client_secret": "entra-s3cret-0123456789abcdef",
    "dcr_immutable_id": "dcr-0123456789abcdef",
    "stream_name": "Custom-ACGS_CL",
    "token": "unused-token-0123456789",
    "api_key": "unused-api-key-0123456789",
    "password": "unused-password-0123456789",
}
LDAP = {
    "server_url": "ldaps://ldap.acme.com:636",
    "base_dn": "dc=acme,dc=com",
    "bind_dn": "cn=acgs2,ou=services,dc=acme,dc=com",
    "bind_password": "secret123",
}


def _seal_and_open(sealer: EnvelopeSealer, tenant: UUID, key_id: str) -> None:
    secrets = SIEM.secret_fields
    sealed = {
        k: sealer.seal(tenant, key_id, secret_path(k), v) if k in secrets else v
        for k, v in CONFIG.items()
    }
    opened = {
        k: sealer.open(tenant, key_id, secret_path(k), v) if k in secrets else v
        for k, v in sealed.items()
    }
    if opened != CONFIG:
        raise AssertionError("a sealed configuration did not open to itself")


def main() -> int:
    targets = Targets("bench_integration_secrets")
    with tempfile.TemporaryDirectory() as directory:
        provider = LocalKeyFile(Path(directory))
        store = InMemoryDataKeys()
        sealer = EnvelopeSealer(provider, store)
        tenant = uuid4()
        key_id = sealer.new_key(tenant)
        for _ in range(1000):  # warm up
            _seal_and_open(sealer, tenant, key_id)
        warm = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            _seal_and_open(sealer, tenant, key_id)
            warm.append(time.perf_counter() - started)
        p99 = percentile(warm, 99) * 1000
        verdict = targets.check("encrypt + decrypt of one config p99 < 1 ms", p99 < 1.0)
        print(
            f"encrypt+decrypt one config ({len(SIEM.secret_fields & set(CONFIG))} secrets), "
            f"warm data key: {summary_ms(warm)}  [{verdict}: p99 < 1 ms]"
        )

        cold = []
        for _ in range(COLD_ROUNDS):
            fresh = EnvelopeSealer(provider, store)  # nothing cached: unwrap from the key file
            started = time.perf_counter()
            _seal_and_open(fresh, tenant, key_id)
            cold.append(time.perf_counter() - started)
        print(f"the same, cold cache (unwrap from the key file first): {summary_ms(cold)}")

        meta = EventMeta(tenant, SYSTEM_ACTOR, DEFAULT_CONSTITUTIONAL_HASH)
        whole = []
        for _ in range(COLD_ROUNDS):
            started = time.perf_counter()
            integration = Integration.register(
                integration_id=uuid4(),
                tenant_id=tenant,
                integration_type="ldap",
                name="bench",
                config=LDAP,
                enabled=True,
                sealer=sealer,
                production=True,
                meta=meta,
            )
            integration.clear_config(sealer)
            whole.append(time.perf_counter() - started)
        print(f"an LDAP config validated, sealed under a new data key, opened: {summary_ms(whole)}")
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
