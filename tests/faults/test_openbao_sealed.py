"""OpenBao sealed under a real `acgs serve` that keeps its secrets with OpenBao transit: creating
an integration (its secret needs a new data key, wrapped by transit) answers 503 with the error
envelope (DEPENDENCY_UNAVAILABLE) and writes nothing, no event, no data key, no read-model row;
reads that need no key still answer; after unseal the same request succeeds, once.

The OpenBao is this test's own dev server (the session's is shared), unsealed with the key it
printed at start."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from infra.postgres.embedded import EmbeddedPostgres
from tests.faults.conftest import ANSWER_BOUND_SECONDS, FaultServe, assert_envelope
from tests.peers.http import HASH, free_port, wait_for
from tests.peers.openbao import _binary

pytestmark = [pytest.mark.faults, pytest.mark.vault, pytest.mark.e2e]


@dataclass
class SealableBao:
    url: str
    token: str
    unseal_key: str

    def _sys(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        response = httpx.put(
            f"{self.url}/v1/sys/{path}",
            json=body or {},
            headers={"X-Vault-Token": self.token},
            timeout=10,
        )
        response.raise_for_status()
        return response

    def seal(self) -> None:
        self._sys("seal")

    def unseal(self) -> None:
        assert self._sys("unseal", {"key": self.unseal_key}).json()["sealed"] is False

    def sealed(self) -> bool:
        return bool(httpx.get(f"{self.url}/v1/sys/seal-status", timeout=5).json()["sealed"])


@pytest.fixture
def own_openbao(tmp_path: Path) -> Iterator[SealableBao]:
    port, token = free_port(), "root-" + secrets.token_hex(8)
    log = tmp_path / "bao.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                _binary(),
                "server",
                "-dev",
                f"-dev-root-token-id={token}",
                f"-dev-listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/v1/sys/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=20, interval=0.05)
        found = wait_for(lambda: re.search(r"Unseal Key: (\S+)", log.read_text()), timeout=10)
        httpx.post(
            f"{url}/v1/sys/mounts/transit",
            json={"type": "transit"},
            headers={"X-Vault-Token": token},
            timeout=5,
        ).raise_for_status()
        yield SealableBao(url, token, found.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _written(data_dir: Path, tenant: UUID) -> tuple[int, int, int]:
    """(integration events, data keys, integration rows) of the tenant."""
    with psycopg.connect(EmbeddedPostgres(data_dir).url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM governance_events WHERE tenant_id = %(t)s "
            "        AND topic LIKE '%%Integration%%'),"
            " (SELECT count(*) FROM integration_data_keys WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM enterprise_integrations WHERE tenant_id = %(t)s)",
            {"t": tenant},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_a_sealed_openbao_is_503_writes_nothing_and_unseal_recovers(
    own_openbao: SealableBao, tmp_path: Path, figures: Any
) -> None:
    bao = own_openbao
    data_dir = tmp_path / "serve"
    serve = FaultServe(data_dir, extra={"ACGS_VAULT_ADDR": bao.url, "ACGS_VAULT_TOKEN": bao.token})
    try:
        serve.start().wait_ready()
        headers = {
            "Authorization": f"Bearer {serve.bootstrap_token()}",
            "X-Constitutional-Hash": HASH,
        }
        with httpx.Client(
            base_url=serve.url, headers=headers, timeout=ANSWER_BOUND_SECONDS
        ) as admin:
            created = admin.post(
                "/v1/tenants",
                json={
                    "tenant_name": "Fault Bao",
                    "tenant_slug": "fault-bao",
                    "admin_email": "ops@fault.example.com",
                },
            )
            assert created.status_code == 201, created.text
            tenant = UUID(created.json()["tenant_id"])
            body = {
                "integration_type": "ldap",
                "integration_name": "Sealed LDAP",
                "config": {
                    "server_url": "ldaps://ldap.fault.example.com",
                    "base_dn": "dc=fault,dc=example,dc=com",
                    "bind_dn": "cn=svc,dc=fault,dc=example,dc=com",
                    "bind_password": "svc-secret-" + secrets.token_hex(6),
                },
            }
            path = f"/v1/tenants/{tenant}/integrations"

            bao.seal()
            assert bao.sealed()
            began = time.monotonic()
            refused = admin.post(path, json=body)
            refused_in = time.monotonic() - began
            error = assert_envelope(refused, "DEPENDENCY_UNAVAILABLE")
            assert body["config"]["bind_password"] not in refused.text
            listed = admin.get(path)  # a read that needs no key still answers
            assert listed.status_code == 200, listed.text
            time.sleep(1.0)  # anything half-written would have reached the read model by now
            assert _written(data_dir, tenant) == (0, 0, 0)

            bao.unseal()
            unsealed_at = time.monotonic()
            accepted = wait_for(
                lambda: (r := admin.post(path, json=body)).status_code == 201 and r,
                timeout=30,
                interval=0.2,
            )
            recovered_after = time.monotonic() - unsealed_at
            integration_id = UUID(accepted.json()["integration_id"])

            def projected() -> tuple[int, int, int] | None:
                found = _written(data_dir, tenant)
                return found if found[2] == 1 else None

            events, keys, rows = wait_for(projected, timeout=30)
            assert (keys, rows) == (1, 1)  # one data key, one integration: once, not twice
            assert events >= 1
            shown = admin.get(f"{path}/{integration_id}")
            assert shown.status_code == 200, shown.text
            assert body["config"]["bind_password"] not in shown.text  # sealed, and redacted
        figures(
            refused=f"503 {error['code']} in {refused_in:.2f} s",
            written_while_sealed="0 events, 0 data keys, 0 rows",
            recovered_after_unseal_s=round(recovered_after, 2),
            after_unseal=f"{events} events, {keys} data key, {rows} row",
        )
    finally:
        serve.stop()
