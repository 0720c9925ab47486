"""What every route shares, over real HTTP: the error envelope for framework errors, security
headers, quotas, idempotency, isolation, operations routes and the logs."""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.http.edge import PUBLIC_PATHS
from api.http.quotas.storage import StorageMeter
from api.logging import JsonFormatter
from domain.maci import MaciRole
from domain.webhooks.targets import AllowList
from tests.e2e import oidc_support
from tests.e2e.policy_support import activate, rego, run_gap_analysis, submit
from tests.e2e.saml_support import Browser, SamlTenant
from tests.e2e.test_ldap_sign_in_api import Directory
from tests.e2e.webhook_receiver import Receiver
from tests.load.policy_corpus import corpus
from tests.peers.http import HASH, HOLD, LEAKY_FAILURE, Api, ManualClock, wait_for
from tests.peers.oidc_provider import OidcProvider
from tests.peers.saml_idp import SamlIdp
from tests.peers.slapd import Slapd

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"]
    assert sorted(body["error"]) == ["code", "constitutional_hash", "details", "message"]
    assert body["error"]["code"] == code
    assert body["error"]["constitutional_hash"] == HASH
    return dict(body["error"])


# --- one envelope, also for the framework's errors ---------------------------------------------


def test_unknown_routes_are_404_in_the_envelope(api: Api, platform: httpx.Client) -> None:
    with api.client() as anonymous:
        _error(anonymous.get("/nowhere"), 404, "NOT_FOUND")
        _error(anonymous.get("/v1/nowhere"), 401, "UNAUTHENTICATED")  # /v1 is behind the edge
    _error(platform.get("/v1/nowhere"), 404, "NOT_FOUND")


def test_wrong_method_is_405_in_the_envelope(platform: httpx.Client) -> None:
    response = platform.put("/v1/tenants", json={})
    _error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]


def test_unhandled_exception_is_a_bare_500_with_a_correlation_id(
    platform: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="acgs.http"):
        response = platform.get("/v1/_test/fail", headers={"X-Request-ID": "corr-test-123456"})
    error = _error(response, 500, "INTERNAL_ERROR")
    assert error["details"] == {"correlation_id": "corr-test-123456"}
    assert response.headers["x-request-id"] == "corr-test-123456"
    for leak in ("SELECT", "password", "RuntimeError", "Traceback", "eyJ"):
        assert leak not in response.text
    records = [r for r in caplog.records if r.name == "acgs.http"]
    assert records, "the failure is logged"
    line = JsonFormatter().format(records[-1])
    entry = json.loads(line)
    assert entry["request_id"] == "corr-test-123456"
    assert "RuntimeError" in entry["exception"]
    assert "eyJhbGciOi" not in line  # the token-like text in the exception is redacted
    assert LEAKY_FAILURE not in line


def test_body_too_large_is_413_in_the_envelope(platform: httpx.Client) -> None:
    response = platform.post(
        "/v1/tenants",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    _error(response, 413, "PAYLOAD_TOO_LARGE")


# --- security headers --------------------------------------------------------------------------


def _assert_security_headers(response: httpx.Response, what: str) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", what
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp, what
    assert "frame-ancestors 'none'" in csp, what
    assert response.headers["cache-control"] == "no-store", what
    assert response.headers["x-constitutional-hash"] == HASH, what
    if response.status_code == 204:  # no content, so no content type (DELETE integration)
        assert response.content == b"", what
    else:
        content_type = response.headers["content-type"].split(";")[0]
        assert content_type.endswith(("json", "xml", "/pdf")) or content_type == "text/plain", what
        assert "html" not in content_type, what
    assert response.headers["x-request-id"], what


def _success_requests(
    api: Api, platform: httpx.Client, unique: str
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """One request per operation of the API that succeeds, keyed by the schema's method and path
    (run in this order: the tenant created first is updated, deactivated, then reactivated)."""
    hdr = {"X-Constitutional-Hash": HASH}
    tenant_id = api.create_tenant(platform, f"hdr-{unique}")["tenant_id"]
    one = f"/v1/tenants/{tenant_id}"
    span = {"start_time": "2000-01-01T00:00:00Z", "end_time": "2000-12-01T00:00:00Z"}
    export: dict[str, str] = {}

    def exported(response: httpx.Response) -> httpx.Response:
        """Keep the export's status URL and run the job, so its file can be downloaded."""
        export["status_url"] = response.json()["status_url"]
        runner = api.system.export_runner()
        while runner.step():
            pass
        return response

    return {
        ("GET", "/healthz"): lambda: httpx.get(f"{api.url}/healthz"),
        ("GET", "/readyz"): lambda: (api.wait_projected(), httpx.get(f"{api.url}/readyz"))[1],
        ("GET", "/.well-known/jwks.json"): lambda: httpx.get(f"{api.url}/.well-known/jwks.json"),
        ("GET", "/metrics"): lambda: httpx.get(f"{api.url}/metrics"),
        ("GET", "/v1/tenants"): lambda: platform.get("/v1/tenants"),
        ("POST", "/v1/tenants"): lambda: platform.post(
            "/v1/tenants",
            json={
                "tenant_name": f"Headers Two {unique}",
                "tenant_slug": f"hdr2-{unique}",
                "admin_email": "h@hdr.example.com",
                "constitutional_hash": HASH,
            },
        ),
        **_integration_requests(api, platform, one),
        ("GET", "/v1/tenants/{tenant_id}"): lambda: platform.get(one),
        ("PATCH", "/v1/tenants/{tenant_id}"): lambda: platform.patch(
            one, json={"tenant_name": f"Headers {unique}"}, headers=hdr
        ),
        ("DELETE", "/v1/tenants/{tenant_id}"): lambda: platform.delete(one, headers=hdr),
        ("POST", "/v1/tenants/{tenant_id}/reactivate"): lambda: platform.post(
            f"{one}/reactivate", headers=hdr
        ),
        ("GET", "/v1/tenants/{tenant_id}/audit-log"): lambda: platform.get(
            f"{one}/audit-log", params=span
        ),
        ("GET", "/v1/audit-log"): lambda: platform.get("/v1/audit-log", params=span),
        ("GET", "/v1/tenants/{tenant_id}/audit-log/export"): lambda: exported(
            platform.get(f"{one}/audit-log/export", params=span)
        ),
        ("GET", "/v1/tenants/{tenant_id}/audit-log/exports/{export_id}"): lambda: platform.get(
            export["status_url"]
        ),
        ("GET", "/v1/tenants/{tenant_id}/audit-log/exports/{export_id}/download"): lambda: (
            platform.get(export["status_url"] + "/download")
        ),
        ("GET", "/v1/tenants/{tenant_id}/audit-log/retention"): lambda: platform.get(
            f"{one}/audit-log/retention"
        ),
        ("PUT", "/v1/tenants/{tenant_id}/audit-log/retention"): lambda: platform.put(
            f"{one}/audit-log/retention", json={"retention_days": 120}, headers=hdr
        ),
        **_policy_requests(api, platform, unique),
        **_gap_requests(api, platform, unique),
        **_migration_requests(api, platform, unique),
    }


def _gap_requests(
    api: Api, platform: httpx.Client, unique: str
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """The gaps of a tenant whose one policy grants without an audit obligation, after a run."""
    tenant = api.create_tenant(platform, f"hdrg-{unique}")["tenant_id"]
    base = f"/v1/tenants/{tenant}/gaps"
    submit(platform, tenant, rego("gappy", "admin"))
    api.wait_projected()
    activate(platform, tenant, "gappy", 1)
    run_gap_analysis(api.system, tenant)

    def accept() -> httpx.Response:
        gap_id = platform.get(base).json()["gaps"][0]["gap_id"]
        body = {"action": "accept", "reason": "headers", "constitutional_hash": HASH}
        return platform.patch(f"{base}/{gap_id}", json=body)

    return {
        ("GET", "/v1/tenants/{tenant_id}/gaps"): lambda: platform.get(base),
        ("PATCH", "/v1/tenants/{tenant_id}/gaps/{gap_id}"): accept,
    }


def _policy_requests(
    api: Api, platform: httpx.Client, unique: str
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """The policy registry's and the decision API's operations, on a tenant of their own."""
    hdr = {"X-Constitutional-Hash": HASH}
    tenant = api.create_tenant(platform, f"hdrp-{unique}")["tenant_id"]
    base = f"/v1/tenants/{tenant}"
    key = "/v1/tenants/{tenant_id}/policies/{policy_id}"

    def settle(response: httpx.Response) -> httpx.Response:
        api.wait_projected()
        return response

    return {
        ("POST", "/v1/tenants/{tenant_id}/policies"): lambda: settle(
            submit(platform, tenant, rego("hdr", "admin"))
        ),
        ("POST", "/v1/tenants/{tenant_id}/policies/upload"): lambda: settle(
            platform.post(
                f"{base}/policies/upload",
                files={"file": ("hdr.rego", rego("hdr", "owner").encode())},
                data={"constitutional_hash": HASH},
            )
        ),
        ("GET", "/v1/tenants/{tenant_id}/policies"): lambda: platform.get(f"{base}/policies"),
        ("GET", key): lambda: platform.get(f"{base}/policies/hdr"),
        ("GET", f"{key}/versions/{{version}}"): lambda: platform.get(
            f"{base}/policies/hdr/versions/2"
        ),
        ("POST", f"{key}/activate"): lambda: activate(platform, tenant, "hdr", 1),
        ("POST", "/v1/tenants/{tenant_id}/decisions"): lambda: platform.post(
            f"{base}/decisions", json={"policy_id": "hdr", "input": {"user": {"role": "admin"}}}
        ),
        ("PUT", "/v1/tenants/{tenant_id}/decision-log/settings"): lambda: platform.put(
            f"{base}/decision-log/settings", json={"log_input": False}, headers=hdr
        ),
        ("GET", "/v1/tenants/{tenant_id}/decision-log/settings"): lambda: platform.get(
            f"{base}/decision-log/settings"
        ),
        ("POST", "/v1/tenants/{tenant_id}/shadow"): lambda: platform.post(
            f"{base}/shadow", json={"action": "configure", "policy_id": "hdr"}, headers=hdr
        ),
        ("POST", "/v1/tenants/{tenant_id}/shadow/decisions"): lambda: platform.post(
            f"{base}/shadow/decisions",
            json={
                "decisions": [
                    {
                        "principal": {"role": "admin"},
                        "action": "read",
                        "resource": "r",
                        "decision": "allow",
                        "latency_ms": 1.0,
                    }
                ]
            },
            headers=hdr,
        ),
        ("GET", "/v1/tenants/{tenant_id}/shadow"): lambda: platform.get(f"{base}/shadow"),
        ("DELETE", key): lambda: platform.delete(f"{base}/policies/hdr", headers=hdr),
    }


def _migration_requests(
    api: Api, platform: httpx.Client, unique: str
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """The migration-job operations, on a tenant of their own (a server-side path allowed)."""
    hdr = {"X-Constitutional-Hash": HASH}
    tenant = api.create_tenant(platform, f"hdrm-{unique}")["tenant_id"]
    base = f"/v1/tenants/{tenant}/migrations"
    allowed = Path(tempfile.mkdtemp(prefix="acgs-hdrm-"))
    (allowed / "p.json").write_text(dict(corpus(1))["bench-00000.json"], encoding="utf-8")
    jobs = api.system.migrations
    assert jobs is not None
    jobs.sources = dataclasses.replace(
        jobs.sources, allowed_dirs=[*jobs.sources.allowed_dirs, allowed]
    )
    job: dict[str, str] = {}

    def started(response: httpx.Response) -> httpx.Response:
        job["url"] = f"{base}/{response.json()['job_id']}"
        api.wait_projected()
        return response

    one = "/v1/tenants/{tenant_id}/migrations/{job_id}"
    return {
        ("POST", "/v1/tenants/{tenant_id}/migrations"): lambda: started(
            platform.post(
                base,
                json={
                    "job_type": "policy_conversion",
                    "source_system": "Legacy",
                    "source_config": {"policy_file_path": str(allowed)},
                    "constitutional_hash": HASH,
                },
            )
        ),
        ("GET", "/v1/tenants/{tenant_id}/migrations"): lambda: platform.get(base),
        ("GET", one): lambda: platform.get(job["url"]),
        ("GET", f"{one}/results"): lambda: platform.get(job["url"] + "/results"),
        ("GET", f"{one}/report.pdf"): lambda: platform.get(job["url"] + "/report.pdf"),
        ("DELETE", one): lambda: platform.delete(job["url"], headers=hdr),
        ("POST", "/v1/tenants/{tenant_id}/migrations/upload"): lambda: platform.post(
            f"{base}/upload",
            files={"file": ("p.json", (allowed / "p.json").read_bytes())},
            data={"job_type": "policy_conversion", "source_system": "Legacy"},
            headers=hdr,
        ),
    }


def _integration_requests(
    api: Api, platform: httpx.Client, one: str
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """The integration operations, on a Kafka integration whose "broker" is this API server's
    own port (its connectivity test is a TCP connect, so it succeeds on 127.0.0.1)."""
    hdr = {"X-Constitutional-Hash": HASH}
    base = f"{one}/integrations"
    made: dict[str, str] = {}
    port = api.url.rsplit(":", 1)[1]

    def create() -> httpx.Response:
        response = platform.post(
            base,
            json={
                "integration_type": "kafka",
                "integration_name": "Headers",
                "config": {"bootstrap_servers": [f"127.0.0.1:{port}"]},
                "constitutional_hash": HASH,
            },
        )
        made["iid"] = response.json().get("integration_id", "")
        api.wait_projected()
        return response

    def sink() -> str:
        if "sink" not in made:
            response = platform.post(
                base,
                json={
                    "integration_type": "siem",
                    "integration_name": "Headers sink",
                    "config": {
                        "kind": "splunk_hec",
                        "url": f"http://127.0.0.1:{port}/services/collector/event",
                        "token": "hec-token",
                    },
                    "constitutional_hash": HASH,
                },
            )
            made["sink"] = response.json()["integration_id"]
        return made["sink"]

    def warehouse() -> str:
        if "warehouse" not in made:
            response = platform.post(
                base,
                json={
                    "integration_type": "data_warehouse",
                    "integration_name": "Headers warehouse",
                    "config": {"provider": "duckdb", "schedule": "0 3 * * *"},
                    "enabled": False,
                    "constitutional_hash": HASH,
                },
            )
            made["warehouse"] = response.json()["integration_id"]
        return made["warehouse"]

    path = "/v1/tenants/{tenant_id}/integrations"
    item = path + "/{integration_id}"
    return {
        ("GET", item + "/deliveries"): lambda: platform.get(f"{base}/{sink()}/deliveries"),
        ("POST", item + "/dead-letters/retry"): lambda: platform.post(
            f"{base}/{sink()}/dead-letters/retry", headers=hdr
        ),
        ("GET", item + "/sync"): lambda: platform.get(f"{base}/{warehouse()}/sync"),
        ("POST", item + "/sync"): lambda: platform.post(f"{base}/{warehouse()}/sync", headers=hdr),
        ("POST", path): create,
        ("GET", path): lambda: platform.get(base),
        ("GET", path + "/health"): lambda: platform.get(f"{base}/health"),
        ("GET", item): lambda: platform.get(f"{base}/{made['iid']}"),
        ("PATCH", item): lambda: platform.patch(
            f"{base}/{made['iid']}", json={"config": {"timeout_seconds": 2}}, headers=hdr
        ),
        ("POST", item + "/test"): lambda: platform.post(f"{base}/{made['iid']}/test", headers=hdr),
        ("DELETE", item): lambda: platform.delete(f"{base}/{made['iid']}", headers=hdr),
    }


def _webhook_requests(
    api: Api, platform: httpx.Client, unique: str, request: pytest.FixtureRequest
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """The webhook routes, on a tenant of their own, into a local receiver (loopback
    allow-listed for the test, as an operator would)."""
    hdr = {"X-Constitutional-Hash": HASH}
    receiver = Receiver().start()
    guard = api.system.webhook_guard
    assert guard is not None
    allowed = guard.allow
    guard.allow = AllowList.parse(["127.0.0.1"])

    def restore() -> None:
        guard.allow = allowed
        receiver.stop()

    request.addfinalizer(restore)
    base = f"/v1/tenants/{api.create_tenant(platform, f'hdrhook-{unique}')['tenant_id']}/webhooks"
    made: dict[str, str] = {}

    def create() -> httpx.Response:
        body = {"webhook_url": receiver.url, "events": ["policy.updated"]}
        response = platform.post(base, json={**body, "constitutional_hash": HASH})
        made["wid"] = response.json().get("webhook_id", "")
        api.wait_projected()
        return response

    path = "/v1/tenants/{tenant_id}/webhooks"
    item = path + "/{webhook_id}"
    return {
        ("POST", path): create,
        ("GET", path): lambda: platform.get(base),
        ("GET", item): lambda: platform.get(f"{base}/{made['wid']}"),
        ("PATCH", item): lambda: platform.patch(
            f"{base}/{made['wid']}", json={"events": ["migration.completed"]}, headers=hdr
        ),
        ("POST", item + "/test"): lambda: platform.post(f"{base}/{made['wid']}/test", headers=hdr),
        ("GET", item + "/deliveries"): lambda: platform.get(f"{base}/{made['wid']}/deliveries"),
        ("DELETE", item): lambda: platform.delete(f"{base}/{made['wid']}", headers=hdr),
    }


def _sign_in_requests(
    api: Api, directory: Directory, slapd: Slapd
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """Role mappings and the sign-in routes, on a tenant whose directory is the real slapd."""
    hdr = {"X-Constitutional-Hash": HASH}
    made: dict[str, Any] = {}
    path = "/v1/tenants/{tenant_id}/role-mappings"

    def login() -> httpx.Response:
        response = directory.login("alice", "alice-password")
        made.update(response.json())
        return response

    def bearer() -> dict[str, str]:
        return {"Authorization": f"Bearer {made['access_token']}"}

    def refresh() -> httpx.Response:
        response = httpx.post(
            f"{api.url}/v1/auth/token/refresh", json={"refresh_token": made["refresh_token"]}
        )
        made.update(response.json())
        return response

    def create_mapping() -> httpx.Response:
        response = directory.admin.post(
            directory.mappings,
            json={
                "integration_id": directory.integration_id,
                "source_type": "ldap_group",
                "source_value": f"cn=headers,{slapd.base_dn}",
                "maci_role": "MONITOR",
                "constitutional_hash": HASH,
            },
        )
        made["mid"] = response.json().get("mapping_id", "")
        api.wait_projected()
        return response

    return {
        ("POST", "/v1/auth/ldap/login"): login,
        ("GET", "/v1/auth/me"): lambda: httpx.get(f"{api.url}/v1/auth/me", headers=bearer()),
        ("POST", "/v1/auth/token/refresh"): refresh,
        ("POST", "/v1/auth/logout"): lambda: httpx.post(
            f"{api.url}/v1/auth/logout", headers=bearer()
        ),
        ("POST", path): create_mapping,
        ("GET", path): lambda: directory.admin.get(directory.mappings),
        ("GET", path + "/{mapping_id}"): lambda: directory.admin.get(
            f"{directory.mappings}/{made['mid']}"
        ),
        ("PATCH", path + "/{mapping_id}"): lambda: directory.admin.patch(
            f"{directory.mappings}/{made['mid']}", json={"priority": 5}, headers=hdr
        ),
        ("DELETE", path + "/{mapping_id}"): lambda: directory.admin.delete(
            f"{directory.mappings}/{made['mid']}", headers=hdr
        ),
    }


def _saml_requests(
    api: Api, platform: httpx.Client, idp: SamlIdp, unique: str, request: pytest.FixtureRequest
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:
    """The SAML routes, on a tenant whose IdP is the fixture's pysaml2 IdP (303s are their
    success: they send the browser on)."""
    tenant = SamlTenant(api, platform, f"hdrsaml-{unique}")
    request.addfinalizer(tenant.admin.close)
    integration = tenant.add(idp)
    browser = Browser(api)
    request.addfinalizer(browser.close)
    made: dict[str, Any] = {}
    base = "/v1/auth/saml/{integration_id}"

    def acs() -> httpx.Response:
        action, fields = browser.sign_in_at_idp(browser.start(integration), "alice",
                                                "alice-password")  # fmt: skip
        response = browser.post_to_acs(action, fields)
        made.update(response.json())
        return response

    def sp_logout() -> httpx.Response:
        response = httpx.post(
            f"{api.url}/v1/auth/saml/{integration}/slo",
            headers={"Authorization": f"Bearer {made['access_token']}"},
        )
        made["redirect_url"] = response.json()["redirect_url"]
        return response

    def idp_answer() -> httpx.Response:
        at_idp = browser.client.get(made["redirect_url"])
        return browser.client.get(at_idp.headers["location"])

    return {
        ("GET", base + "/metadata"): lambda: httpx.get(
            f"{api.url}/v1/auth/saml/{integration}/metadata"
        ),
        ("GET", base + "/login"): lambda: httpx.get(f"{api.url}/v1/auth/saml/{integration}/login"),
        ("POST", "/v1/auth/saml/acs"): acs,
        ("POST", base + "/slo"): sp_logout,
        ("GET", base + "/slo"): idp_answer,
    }


def _oidc_requests(
    api: Api, platform: httpx.Client, provider: OidcProvider, unique: str,
    request: pytest.FixtureRequest,
) -> dict[tuple[str, str], Callable[[], httpx.Response]]:  # fmt: skip
    """The OpenID Connect routes, on a tenant whose provider is the real test provider (the
    login's 303 is its success: it sends the browser on; the callback answers the tokens)."""
    tenant = oidc_support.OidcTenant(api, platform, provider, f"hdroidc-{unique}")
    browser = oidc_support.Browser()
    request.addfinalizer(browser.close)
    return {
        ("GET", "/v1/auth/oidc/{integration_id}/login"): lambda: httpx.get(
            oidc_support.login_url(api, tenant.integration_id)
        ),
        ("GET", "/v1/auth/oidc/callback"): lambda: browser.sign_in(
            api, tenant.integration_id, "alice", "alice-oidc-pw"
        ),
    }


@pytest.mark.ldap
@pytest.mark.saml
@pytest.mark.oidc
def test_every_operation_carries_the_security_headers_on_success_and_error(
    api: Api,
    platform: httpx.Client,
    slapd: Slapd,
    saml_idp: SamlIdp,
    oidc_provider: OidcProvider,
    unique: str,
    request: pytest.FixtureRequest,
) -> None:
    with api.client() as anonymous:
        paths = anonymous.get("/schema").json()["paths"]
    operations = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    directory = Directory(api, platform, slapd, f"hdrldap-{unique}")
    request.addfinalizer(directory.admin.close)
    requests = {
        **_success_requests(api, platform, unique),
        **_sign_in_requests(api, directory, slapd),
        **_saml_requests(api, platform, saml_idp, unique, request),
        **_oidc_requests(api, platform, oidc_provider, unique, request),
        **_webhook_requests(api, platform, unique, request),
    }
    assert set(requests) == operations  # a new operation must be added here
    for (method, path), send in requests.items():
        response = send()
        assert 200 <= response.status_code < 300 or response.status_code == 303, (
            method,
            path,
            response.text,
        )
        _assert_security_headers(response, f"{method} {path} success")
    with api.client() as anonymous:
        for method, path in operations:
            concrete = path.replace("{tenant_id}", "00000000-0000-0000-0000-000000000000")
            # secured operations: 401 without a token; open ones: 405 for a method they lack;
            # the sign-in routes take no token: 422 for the missing body
            response = anonymous.request(method if path.startswith("/v1/") else "PUT", concrete)
            # (the SAML ACS: 401 INVALID_ASSERTION, there is no SAMLResponse to accept)
            refusals = (422,) if path in PUBLIC_PATHS else (401, 405)
            if path.startswith("/v1/auth/oidc/"):  # no such integration, or no state
                refusals = (401, 404)
            assert response.status_code in refusals, (method, path, response.status_code)
            _assert_security_headers(response, f"{method} {path} error")
    for method, path in (
        ("GET", "/nowhere"),  # the framework's 404
        ("GET", "/schema"),
        ("GET", "/v1/tenants/"),  # path variants of protected routes
        ("GET", "//v1/tenants"),
        ("GET", "/v1%2Ftenants"),
        ("GET", "/v1/tenants%2F00000000-0000-0000-0000-000000000000"),
        ("POST", "/v1/tenants/not-a-uuid/reactivate"),
    ):
        for token in (platform.headers["Authorization"], None):
            headers = {"Authorization": token} if token else {}
            response = httpx.request(method, f"{api.url}{path}", headers=headers)
            assert response.status_code < 500, (method, path, response.text)
            _assert_security_headers(response, f"{method} {path}")


# --- quotas ------------------------------------------------------------------------------------


def test_rate_limit_headers_then_429_with_retry_after(
    api: Api, platform: httpx.Client, unique: str, limiter_clock: ManualClock
) -> None:
    tenant_id = UUID(
        api.create_tenant(platform, f"rate-{unique}", max_requests_per_minute=3)["tenant_id"]
    )
    limiter_clock.now = 1_700_000_000.0
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as own:
        seen = []
        for _ in range(3):
            response = own.get(f"/v1/tenants/{tenant_id}")
            assert response.status_code == 200
            seen.append(response.headers)
            limiter_clock.now += 10  # 0 s, 10 s, 20 s into the minute
        assert [h["x-ratelimit-remaining"] for h in seen] == ["2", "1", "0"]
        assert {h["x-ratelimit-limit"] for h in seen} == {"3"}
        # the oldest counted request (at 1_700_000_000) leaves the window a minute and one
        # one-second bucket later
        assert {h["x-ratelimit-reset"] for h in seen} == {"1700000061"}
        refused = own.get(f"/v1/tenants/{tenant_id}")  # at 30 s
        error = _error(refused, 429, "RATE_LIMITED")
        assert refused.headers["retry-after"] == "31"
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert error["details"]["limit"] == 3
        # a write refused by the limiter writes nothing
        head = api.head()
        _error(
            own.patch(
                f"/v1/tenants/{tenant_id}",
                json={"tenant_name": "Limited Inc"},
                headers={"X-Constitutional-Hash": HASH},
            ),
            429,
            "RATE_LIMITED",
        )
        assert api.head() == head
        limiter_clock.now = 1_700_000_060.0  # just before the first request leaves the window
        _error(own.get(f"/v1/tenants/{tenant_id}"), 429, "RATE_LIMITED")
        limiter_clock.now = 1_700_000_061.0  # it has left: one request fits again
        again = own.get(f"/v1/tenants/{tenant_id}")
        assert again.status_code == 200, again.text
        assert again.headers["x-ratelimit-remaining"] == "0"
        _error(own.get(f"/v1/tenants/{tenant_id}"), 429, "RATE_LIMITED")
    # another tenant's budget is its own
    assert platform.get(f"/v1/tenants/{tenant_id}").status_code == 200


def test_raised_quota_applies_to_the_next_request(
    api: Api, platform: httpx.Client, unique: str, limiter_clock: ManualClock
) -> None:
    tenant_id = UUID(
        api.create_tenant(platform, f"raise-{unique}", max_requests_per_minute=1)["tenant_id"]
    )
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as own:
        assert own.get(f"/v1/tenants/{tenant_id}").status_code == 200
        _error(own.get(f"/v1/tenants/{tenant_id}"), 429, "RATE_LIMITED")
        raised = platform.patch(
            f"/v1/tenants/{tenant_id}",
            json={"max_requests_per_minute": 50},
            headers={"X-Constitutional-Hash": HASH},
        )
        assert raised.status_code == 200
        response = own.get(f"/v1/tenants/{tenant_id}")  # the clock has not moved
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == "50"
        assert response.headers["x-ratelimit-remaining"] == "48"


def test_concurrency_limit_refuses_with_429(api: Api, platform: httpx.Client, unique: str) -> None:
    tenant_id = UUID(
        api.create_tenant(platform, f"conc-{unique}", max_concurrent_connections=1)["tenant_id"]
    )
    token = api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)
    HOLD.clear()
    with api.client(token) as first, api.client(token) as second, ThreadPoolExecutor(1) as pool:
        held = pool.submit(first.get, "/v1/_test/hold")
        try:
            wait_for(lambda: _in_flight(api, tenant_id) == 1)
            error = _error(second.get(f"/v1/tenants/{tenant_id}"), 429, "CONCURRENCY_LIMITED")
            assert error["details"] == {"limit": 1}
        finally:
            HOLD.set()
        assert held.result(timeout=10).json() == {"released": True}
        wait_for(lambda: _in_flight(api, tenant_id) == 0)
        assert second.get(f"/v1/tenants/{tenant_id}").status_code == 200


def _in_flight(api: Api, tenant_id: UUID) -> int:
    counts: dict[UUID, int] = api.services.concurrency._in_flight  # type: ignore[attr-defined]
    return counts.get(tenant_id, 0)


class _FullStorage(StorageMeter):
    def __init__(self, real: StorageMeter, full: UUID) -> None:
        self._real, self._full = real, full

    async def bytes_used(self, tenant_id: UUID) -> int:
        if tenant_id == self._full:
            return 10**15
        return await self._real.bytes_used(tenant_id)


def test_writes_beyond_the_storage_quota_are_403(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    tenant_id = UUID(api.create_tenant(platform, f"store-{unique}")["tenant_id"])
    real = api.services.storage
    api.services.storage = _FullStorage(real, tenant_id)
    try:
        with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant_id)) as own:
            head = api.head()
            error = _error(
                own.patch(
                    f"/v1/tenants/{tenant_id}",
                    json={"tenant_name": "Full Inc"},
                    headers={"X-Constitutional-Hash": HASH},
                ),
                403,
                "STORAGE_QUOTA_EXCEEDED",
            )
            assert error["details"] == {"max_storage_gb": 10}
            assert api.head() == head
            detail = own.get(f"/v1/tenants/{tenant_id}")  # reads still work
            assert detail.status_code == 200
            assert detail.json()["usage_stats"]["current_storage_gb"] > 10
        # the platform can still act on the tenant (e.g. raise its quota)
        raised = platform.patch(
            f"/v1/tenants/{tenant_id}",
            json={"max_storage_gb": 10_000},
            headers={"X-Constitutional-Hash": HASH},
        )
        assert raised.status_code == 200
    finally:
        api.services.storage = real


# --- idempotency -------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_replays_the_first_response(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    body = {
        "tenant_name": f"Idem {unique}",
        "tenant_slug": f"idem-{unique}",
        "admin_email": "a@idem.example.com",
        "constitutional_hash": HASH,
    }
    headers = {"Idempotency-Key": f"create-{unique}"}
    first = platform.post("/v1/tenants", json=body, headers=headers)
    assert first.status_code == 201, first.text
    head = api.head()
    reordered = dict(reversed(list(body.items())))
    second = platform.post("/v1/tenants", json=reordered, headers=headers)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert api.head() == head  # nothing written the second time
    other = platform.post(
        "/v1/tenants", json={**body, "tenant_name": f"Other {unique}"}, headers=headers
    )
    _error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    # without the key, a replay is a conflict on the slug
    _error(platform.post("/v1/tenants", json=body), 409, "TENANT_SLUG_TAKEN")


def test_a_failed_request_releases_its_idempotency_key(platform: httpx.Client, unique: str) -> None:
    body = {
        "tenant_name": f"Retry {unique}",
        "tenant_slug": f"retry-{unique}",
        "admin_email": "a@retry.example.com",
    }
    headers = {"Idempotency-Key": f"retry-{unique}"}
    _error(
        platform.post("/v1/tenants", json=body, headers=headers),
        400,
        "CONSTITUTIONAL_HASH_REQUIRED",
    )
    fixed = platform.post(
        "/v1/tenants", json={**body, "constitutional_hash": HASH}, headers=headers
    )
    assert fixed.status_code == 201, fixed.text


def test_idempotency_keys_are_per_principal(api: Api, platform: httpx.Client, unique: str) -> None:
    body = {
        "tenant_name": f"Per {unique}",
        "tenant_slug": f"per-{unique}",
        "admin_email": "a@per.example.com",
        "constitutional_hash": HASH,
    }
    headers = {"Idempotency-Key": f"shared-{unique}"}
    assert platform.post("/v1/tenants", json=body, headers=headers).status_code == 201
    with api.client(api.token(MaciRole.EXECUTIVE, sub=f"other-{unique}")) as other:
        _error(other.post("/v1/tenants", json=body, headers=headers), 409, "TENANT_SLUG_TAKEN")


def test_invalid_idempotency_key_is_422(platform: httpx.Client, unique: str) -> None:
    body = {
        "tenant_name": f"Key {unique}",
        "tenant_slug": f"key-{unique}",
        "admin_email": "a@key.example.com",
        "constitutional_hash": HASH,
    }
    _error(
        platform.post("/v1/tenants", json=body, headers={"Idempotency-Key": "x" * 300}),
        422,
        "VALIDATION_ERROR",
    )


def test_concurrent_creations_with_one_key_create_one_tenant(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    body = {
        "tenant_name": f"Race {unique}",
        "tenant_slug": f"race-{unique}",
        "admin_email": "a@race.example.com",
        "constitutional_hash": HASH,
    }
    headers = {
        "Idempotency-Key": f"race-{unique}",
        "Authorization": platform.headers["Authorization"],
    }
    start = threading.Barrier(8)

    def create() -> httpx.Response:
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as client:
            start.wait()
            return client.post("/v1/tenants", json=body)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: create(), range(8)))
    created = [r for r in responses if r.status_code == 201]
    assert created
    assert len({r.json()["tenant_id"] for r in created}) == 1
    for r in responses:
        if r.status_code != 201:
            _error(r, 409, "IDEMPOTENCY_KEY_IN_USE")


# --- isolation ---------------------------------------------------------------------------------


def test_a_tenant_token_sees_404_for_another_tenants_resources(
    api: Api, platform: httpx.Client, unique: str
) -> None:
    a = UUID(api.create_tenant(platform, f"iso-a-{unique}")["tenant_id"])
    b = UUID(api.create_tenant(platform, f"iso-b-{unique}")["tenant_id"])
    hdr = {"X-Constitutional-Hash": HASH}
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=a, sub=f"iso-a-{unique}")) as tenant_a:
        assert tenant_a.get(f"/v1/tenants/{a}").status_code == 200
        head = api.head()
        _error(tenant_a.get(f"/v1/tenants/{b}"), 404, "NOT_FOUND")
        _error(
            tenant_a.patch(f"/v1/tenants/{b}", json={"tenant_name": "Mine Now"}, headers=hdr),
            404,
            "NOT_FOUND",
        )
        _error(
            tenant_a.patch(f"/v1/tenants/{b}", json={"max_storage_gb": 1}, headers=hdr),
            404,
            "NOT_FOUND",
        )
        _error(tenant_a.delete(f"/v1/tenants/{b}", headers=hdr), 404, "NOT_FOUND")
        _error(tenant_a.post(f"/v1/tenants/{b}/reactivate", headers=hdr), 404, "NOT_FOUND")
        missing = "6f1c1b38-1c43-4f5e-8f1e-5a8f0c0b7d11"
        # the same answer as for a tenant that does not exist at all
        assert (
            tenant_a.get(f"/v1/tenants/{b}").json()["error"]["message"]
            == tenant_a.get(f"/v1/tenants/{missing}").json()["error"]["message"]
        )
        _error(tenant_a.get("/v1/tenants"), 403, "FORBIDDEN")
    api.wait_projected()
    assert platform.get(f"/v1/tenants/{b}").json()["tenant_name"] == f"Tenant iso-b-{unique}"
    # nothing but the audit records of the four refused writes was written (reads are not audited)
    assert api.head() - head == 4
    with psycopg.connect(api.system.admin_url) as conn:
        audited = conn.execute(
            "SELECT tenant_id, action, result, target_resource FROM tenant_audit_log "
            "WHERE actor_id = %s AND result <> 'success' ORDER BY action",
            [f"iso-a-{unique}"],
        ).fetchall()
    assert audited == [
        (a, "deactivate_tenant", "denied", f"tenant/{b}"),
        (a, "reactivate_tenant", "denied", f"tenant/{b}"),
        (a, "update_tenant", "denied", f"tenant/{b}"),
        (a, "update_tenant", "denied", f"tenant/{b}"),
    ]


# --- operations --------------------------------------------------------------------------------


def test_healthz_and_readyz(api: Api) -> None:
    with api.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        api.wait_projected()
        ready = anonymous.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["database"] == "ok"


def test_metrics_expose_requests_latency_events_and_lag(api: Api, platform: httpx.Client) -> None:
    assert platform.get("/v1/tenants").status_code == 200
    with api.client() as anonymous:
        response = anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'acgs_http_requests_total{method="GET",route="/v1/tenants",status="200",tenant='
        '"00000000-0000-0000-0000-000000000000"}' in text
    )
    assert "acgs_http_request_duration_seconds_bucket" in text
    assert "acgs_events_appended_total" in text
    assert 'acgs_projection_lag_seconds{projection="tenants"}' in text
    assert 'acgs_projection_lag_events{projection="audit_log"}' in text


def test_jwks_serves_the_public_signing_keys(api: Api) -> None:
    with api.client() as anonymous:
        keys = anonymous.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["kid"]
        assert key["alg"] == "RS256"
        assert "d" not in key
        assert "p" not in key


def test_schema_documents_every_route_with_examples(api: Api) -> None:
    with api.client() as anonymous:
        schema = anonymous.get("/schema").json()
    paths = schema["paths"]
    expected = {
        ("/v1/tenants", "post"),
        ("/v1/tenants", "get"),
        ("/v1/tenants/{tenant_id}", "get"),
        ("/v1/tenants/{tenant_id}", "patch"),
        ("/v1/tenants/{tenant_id}", "delete"),
        ("/v1/tenants/{tenant_id}/reactivate", "post"),
    }
    for path, method in expected:
        operation = paths[path][method]
        responses = operation["responses"]
        success = next(r for s, r in responses.items() if s.startswith("2"))
        assert success["content"]["application/json"]["examples"], (path, method)
        assert "401" in responses
        assert "429" in responses
        assert operation["security"] == [{"BearerToken": []}]
    assert not any(p.startswith("/v1/_test") for p in paths)
    for path, method in (("/v1/tenants", "post"), ("/v1/tenants/{tenant_id}", "patch")):
        content = paths[path][method]["requestBody"]["content"]["application/json"]
        assert content["schema"]["examples"], (path, method)


def test_access_log_is_json_with_request_id_and_no_token(
    api: Api, platform: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    token = platform.headers["Authorization"].removeprefix("Bearer ")

    def logged() -> list[logging.LogRecord]:
        return [
            r
            for r in caplog.records
            if r.name == "acgs.http.access"
            and getattr(r, "fields", {}).get("route") == "/v1/tenants"
        ]

    with caplog.at_level(logging.INFO, logger="acgs.http.access"):
        platform.get(
            "/v1/tenants", params={"token": token}, headers={"X-Request-ID": "access-log-test-1"}
        )
        # The server's thread logs the request once its answer is sent: the client may have it
        # first.
        deadline = time.monotonic() + 10
        while not logged() and time.monotonic() < deadline:
            time.sleep(0.01)
    records = logged()
    assert records
    line = JsonFormatter().format(records[-1])
    entry = json.loads(line)
    assert entry["request_id"] == "access-log-test-1"
    assert entry["status"] == 200
    assert entry["tenant_id"] == "00000000-0000-0000-0000-000000000000"
    assert token not in line
