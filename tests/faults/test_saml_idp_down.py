"""The SAML IdP stopped and started again (on the same port) under a real `acgs serve`: while
it is down, the integration's connection test (the IdP's metadata and certificates, fetched for
real) answers 503 with the error envelope within a bound and the integration's health shows it;
once the IdP is back, the test succeeds again by itself.

The IdP is this test's own (the session's two are shared); it comes back with a new signing key,
as after a restart with a rotated certificate, which the fresh metadata carries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.saml_support import ATTRIBUTE_MAP, RETURN_TO
from tests.faults.conftest import ANSWER_BOUND_SECONDS, FaultServe, assert_envelope
from tests.peers.http import HASH, free_port, wait_for
from tests.peers.saml_idp import make_key_pair, running_idp

pytestmark = [pytest.mark.faults, pytest.mark.saml, pytest.mark.e2e]

BREAKER_RESET_SECONDS = 2
UNREACHABLE = {"INTEGRATION_UNREACHABLE", "DEPENDENCY_UNAVAILABLE"}


def test_saml_idp_down_is_503_and_recovers_by_itself(tmp_path: Path, figures: Any) -> None:
    port = free_port()
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
                    "tenant_name": "Fault SAML",
                    "tenant_slug": "fault-saml",
                    "admin_email": "ops@fault.example.com",
                },
            )
            assert created.status_code == 201, created.text
            tenant = created.json()["tenant_id"]
            sp_keys = make_key_pair("SP fault-saml")
            (tmp_path / "idp-1").mkdir()
            with running_idp(tmp_path / "idp-1", port=port) as idp:
                integration = admin.post(
                    f"/v1/tenants/{tenant}/integrations",
                    json={
                        "integration_type": "saml",
                        "integration_name": "Corporate SSO",
                        "config": {
                            "idp_metadata_url": idp.metadata_url,
                            "sp_entity_id": "urn:acgs:sp:fault-saml",
                            "sp_private_key": sp_keys.key_pem,
                            "sp_certificate": sp_keys.cert_pem,
                            "allowed_redirect_urls": [RETURN_TO],
                            "attribute_map": ATTRIBUTE_MAP,
                        },
                    },
                )
                assert integration.status_code == 201, integration.text
                integration_id = integration.json()["integration_id"]
                test_path = f"/v1/tenants/{tenant}/integrations/{integration_id}/test"
                assert admin.post(test_path).status_code == 200
            stopped_at = time.monotonic()  # the block ended: the IdP is shut down
            began = time.monotonic()
            tested = admin.post(test_path)
            test_took = time.monotonic() - began
            health = admin.get(f"/v1/tenants/{tenant}/integrations/health")
            code = tested.json()["error"]["code"]
            assert code in UNREACHABLE, tested.text
            assert_envelope(tested, code)
            assert test_took < ANSWER_BOUND_SECONDS
            [shown] = [
                i for i in health.json()["integrations"] if i["integration_id"] == integration_id
            ]
            assert shown["health_status"] in {"unhealthy", "degraded"}, shown

            (tmp_path / "idp-2").mkdir()
            with running_idp(tmp_path / "idp-2", port=port):
                back_at = time.monotonic()
                wait_for(lambda: admin.post(test_path).status_code == 200, timeout=60, interval=0.3)
                recovered_after = time.monotonic() - back_at
        figures(
            connection_test=f"503 {code} in {test_took:.2f} s",
            health_while_down=shown["health_status"],
            outage_s=round(back_at - stopped_at, 2),
            recovered_after_restart_s=round(recovered_after, 2),
        )
    finally:
        serve.stop()
