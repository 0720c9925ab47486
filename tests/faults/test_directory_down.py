"""slapd stopped and started again under a real `acgs serve`: while it is down, LDAP sign-in
answers 503 with the error envelope (DEPENDENCY_UNAVAILABLE: the sign-in's own code for a
directory it cannot reach), the connection test 503 (INTEGRATION_UNREACHABLE, or
DEPENDENCY_UNAVAILABLE once the breaker opened), each within a bound, and the integration's
health shows it; once slapd is back, sign-in works again by itself (the breaker half-opens).

The slapd is this test's own (the session's is shared), started again with the same command
line and the same database directory."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.conftest import (
    ANSWER_BOUND_SECONDS,
    FaultServe,
    Relaunchable,
    assert_envelope,
)
from tests.peers.http import HASH, wait_for
from tests.peers.slapd import BASE_DN, Slapd, running_slapd

pytestmark = [pytest.mark.faults, pytest.mark.ldap, pytest.mark.e2e]

EXECUTIVES = f"cn=executives,ou=groups,{BASE_DN}"
BREAKER_RESET_SECONDS = 2


@pytest.fixture
def own_slapd(tmp_path: Path) -> Iterator[tuple[Slapd, Relaunchable]]:
    work = tmp_path / "slapd"
    work.mkdir()
    with running_slapd(work) as server:
        process = Relaunchable(str(work / "slapd.conf"), server.ldaps_port, work / "again.log")
        try:
            yield server, process
        finally:
            process.close()


def _timed(call: Any) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def test_ldap_sign_in_is_503_while_slapd_is_down_and_recovers_by_itself(
    own_slapd: tuple[Slapd, Relaunchable], tmp_path: Path, figures: Any
) -> None:
    ldap, slapd = own_slapd
    serve = FaultServe(
        tmp_path / "serve", extra={"ACGS_BREAKER_RESET_SECONDS": str(BREAKER_RESET_SECONDS)}
    )
    try:
        serve.start().wait_ready()
        headers = {
            "Authorization": f"Bearer {serve.bootstrap_token()}",
            "X-Constitutional-Hash": HASH,
        }
        with httpx.Client(
            base_url=serve.url, headers=headers, timeout=ANSWER_BOUND_SECONDS
        ) as admin:
            slug = "fault-ldap"
            created = admin.post(
                "/v1/tenants",
                json={
                    "tenant_name": "Fault LDAP",
                    "tenant_slug": slug,
                    "admin_email": "ops@fault.example.com",
                },
            )
            assert created.status_code == 201, created.text
            tenant = created.json()["tenant_id"]
            integration = admin.post(
                f"/v1/tenants/{tenant}/integrations",
                json={
                    "integration_type": "ldap",
                    "integration_name": "Corporate LDAP",
                    "config": {
                        "server_url": ldap.ldaps_url,
                        "base_dn": ldap.base_dn,
                        "bind_dn": ldap.service_dn,
                        "bind_password": ldap.service_password,
                        "ca_cert_pem": ldap.ca_pem,
                        "group_search_filter": "(|(member={user_dn})(memberUid={username}))",
                        "timeout_seconds": 2,
                    },
                },
            )
            assert integration.status_code == 201, integration.text
            integration_id = integration.json()["integration_id"]
            mapping = admin.post(
                f"/v1/tenants/{tenant}/role-mappings",
                json={
                    "integration_id": integration_id,
                    "source_type": "ldap_group",
                    "source_value": EXECUTIVES,
                    "maci_role": "EXECUTIVE",
                    "priority": 10,
                },
            )
            assert mapping.status_code == 201, mapping.text

            def sign_in() -> httpx.Response:
                return httpx.post(
                    f"{serve.url}/v1/auth/ldap/login",
                    json={"tenant_slug": slug, "username": "alice", "password": "alice-password"},
                    timeout=ANSWER_BOUND_SECONDS,
                )

            wait_for(lambda: sign_in().status_code == 200, timeout=30, interval=0.2)

            slapd.stop(signal.SIGINT)
            stopped_at = time.monotonic()
            refusals = [_timed(sign_in) for _ in range(3)]
            tested, test_took = _timed(
                lambda: admin.post(f"/v1/tenants/{tenant}/integrations/{integration_id}/test")
            )
            health = admin.get(f"/v1/tenants/{tenant}/integrations/health")
            for response, took in refusals:
                assert_envelope(response, "DEPENDENCY_UNAVAILABLE")
                assert took < ANSWER_BOUND_SECONDS
            error = tested.json()["error"]
            assert error["code"] in {"INTEGRATION_UNREACHABLE", "DEPENDENCY_UNAVAILABLE"}
            assert_envelope(tested, error["code"])
            assert health.status_code == 200, health.text
            [shown] = [
                i for i in health.json()["integrations"] if i["integration_id"] == integration_id
            ]
            assert shown["health_status"] in {"unhealthy", "degraded"}, shown

            slapd.start()
            started_at = time.monotonic()
            wait_for(lambda: sign_in().status_code == 200, timeout=60, interval=0.2)
            recovered_after = time.monotonic() - started_at
            retested = admin.post(f"/v1/tenants/{tenant}/integrations/{integration_id}/test")
            assert retested.status_code == 200, retested.text
            assert retested.json()["test_result"] == "success"
        figures(
            sign_in_refused_503=len(refusals),
            slowest_refusal_s=round(max(took for _, took in refusals), 2),
            connection_test=f"503 {error['code']} in {test_took:.2f} s",
            health_while_down=shown["health_status"],
            outage_s=round(started_at - stopped_at, 2),
            recovered_after_restart_s=round(recovered_after, 2),
        )
    finally:
        serve.stop()
