"""The OpenID provider stopped and started again under a real `acgs serve`: while it is down, the
integration's connection test (discovery and JWKS, fetched for real) answers 503 with the error
envelope within a bound and the integration's health shows it; the sign-in start answers either
its redirect (from the discovery document it cached: the provider is not asked) or a 503
envelope, never a 500 or a hang; once the provider is back, both work again by themselves.

The provider is this test's own (the session's is shared), started again with the same command
line and configuration (the same port, issuer and keys)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests.faults.conftest import (
    ANSWER_BOUND_SECONDS,
    FaultServe,
    Relaunchable,
    assert_envelope,
)
from tests.peers.http import HASH, wait_for
from tests.peers.oidc_provider import OidcProvider, running_provider

pytestmark = [pytest.mark.faults, pytest.mark.oidc, pytest.mark.e2e]

BREAKER_RESET_SECONDS = 2
UNREACHABLE = {"INTEGRATION_UNREACHABLE", "DEPENDENCY_UNAVAILABLE"}


@pytest.fixture
def own_provider(tmp_path: Path) -> Iterator[tuple[OidcProvider, Relaunchable]]:
    work = tmp_path / "oidc"
    work.mkdir()
    with running_provider(work) as provider:
        port = urlparse(provider.issuer).port
        assert port is not None
        process = Relaunchable(str(work / "provider.json"), port, work / "again.log")
        try:
            yield provider, process
        finally:
            process.close()


def test_oidc_provider_down_is_503_and_recovers_by_itself(
    own_provider: tuple[OidcProvider, Relaunchable], tmp_path: Path, figures: Any
) -> None:
    provider, process = own_provider
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
            created = admin.post(
                "/v1/tenants",
                json={
                    "tenant_name": "Fault OIDC",
                    "tenant_slug": "fault-oidc",
                    "admin_email": "ops@fault.example.com",
                },
            )
            assert created.status_code == 201, created.text
            tenant = created.json()["tenant_id"]
            integration = admin.post(
                f"/v1/tenants/{tenant}/integrations",
                json={
                    "integration_type": "oidc",
                    "integration_name": "Provider",
                    "config": {
                        "issuer": provider.issuer,
                        "client_id": provider.web.client_id,
                        "client_secret": provider.web.client_secret,
                        "scopes": ["openid", "profile", "email", "groups"],
                        "allowed_id_token_algorithms": ["RS256"],
                    },
                },
            )
            assert integration.status_code == 201, integration.text
            integration_id = integration.json()["integration_id"]
            test_path = f"/v1/tenants/{tenant}/integrations/{integration_id}/test"

            def start_sign_in() -> httpx.Response:
                return httpx.get(
                    f"{serve.url}/v1/auth/oidc/{integration_id}/login",
                    timeout=ANSWER_BOUND_SECONDS,
                )

            wait_for(lambda: start_sign_in().status_code == 303, timeout=30, interval=0.2)
            assert admin.post(test_path).status_code == 200

            process.stop()
            stopped_at = time.monotonic()
            began = time.monotonic()
            tested = admin.post(test_path)
            test_took = time.monotonic() - began
            began = time.monotonic()
            started = start_sign_in()
            start_took = time.monotonic() - began
            health = admin.get(f"/v1/tenants/{tenant}/integrations/health")

            code = tested.json()["error"]["code"]
            assert code in UNREACHABLE, tested.text
            assert_envelope(tested, code)
            assert test_took < ANSWER_BOUND_SECONDS
            assert start_took < ANSWER_BOUND_SECONDS
            if started.status_code != 303:
                assert_envelope(started, started.json()["error"]["code"])
                assert started.json()["error"]["code"] in UNREACHABLE
            [shown] = [
                i for i in health.json()["integrations"] if i["integration_id"] == integration_id
            ]
            assert shown["health_status"] in {"unhealthy", "degraded"}, shown

            process.start()
            back_at = time.monotonic()
            wait_for(lambda: admin.post(test_path).status_code == 200, timeout=60, interval=0.3)
            recovered_after = time.monotonic() - back_at
            assert start_sign_in().status_code == 303
        figures(
            connection_test=f"503 {code} in {test_took:.2f} s",
            sign_in_start_while_down=f"{started.status_code} in {start_took:.2f} s",
            health_while_down=shown["health_status"],
            outage_s=round(back_at - stopped_at, 2),
            recovered_after_restart_s=round(recovered_after, 2),
        )
    finally:
        serve.stop()
