"""The console's tenant, integration, shadow, role-mapping and migration pages refuse what they
must, over plain HTTP, and say why where it applies; signing in and out with a bad token or an
ended session leads back to the sign-in page. Real app and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from uuid import UUID, uuid4

import pytest

from api.console.session import CSRF_HEADER
from domain.maci import MaciRole
from tests.e2e.console_http import Console, by_id, console_of, errors_of, new_tenant
from tests.peers.http import HASH, Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
OIDC = {"issuer": "https://idp.acme.test", "client_id": "c", "client_secret": "s"}


@pytest.fixture(scope="module")
def tenant(api: Api) -> UUID:
    with api.client(api.token(MaciRole.EXECUTIVE)) as platform:
        return new_tenant(api, platform, "cfm")


@pytest.fixture(scope="module")
def integration(api: Api, tenant: UUID) -> UUID:
    """An OIDC integration of the tenant (never contacted: its issuer is not resolvable)."""
    with api.client(api.token(MaciRole.EXECUTIVE, tenant_id=tenant)) as admin:
        made = admin.post(
            f"/v1/tenants/{tenant}/integrations",
            json={
                "integration_type": "oidc",
                "integration_name": "Idp",
                "config": OIDC,
                "constitutional_hash": HASH,
            },
        )
    assert made.status_code == 201, made.text
    api.wait_projected()
    return UUID(made.json()["integration_id"])


@pytest.fixture
def operator(api: Api) -> Iterator[Console]:
    console = console_of(api, MaciRole.EXECUTIVE)
    yield console
    console.close()


@pytest.fixture
def admin(api: Api, tenant: UUID) -> Iterator[Console]:
    console = console_of(api, MaciRole.EXECUTIVE, tenant_id=tenant)
    yield console
    console.close()


@pytest.fixture
def monitor(api: Api, tenant: UUID) -> Iterator[Console]:
    console = console_of(api, MaciRole.MONITOR, tenant_id=tenant)
    yield console
    console.close()


# --- tenants ----------------------------------------------------------------------------------


def test_a_new_tenant_s_form_lists_every_problem(api: Api, operator: Console) -> None:
    slug = f"cfn-{uuid4().hex[:10]}"
    fields = {
        "tenant_name": "Acme",
        "tenant_slug": slug,
        "admin_email": f"admin@{slug}.example.com",
    }
    typed = operator.post("/tenants", {**fields, "max_requests_per_minute": "many"})
    assert typed.status_code == 422
    assert by_id(typed, "max_requests_per_minute-error") == "must be a whole number"
    unknown = operator.post("/tenants", {**fields, "admin_email": ""})
    assert unknown.status_code == 422
    assert errors_of(unknown) == ["Object missing required field `admin_email`"]
    wrong = operator.post("/tenants", {**fields, "constitutional_hash": "0" * 16})
    assert wrong.status_code == 422
    assert "hash" in " ".join(errors_of(wrong)).lower()
    made = operator.post("/tenants", {**fields, "max_requests_per_minute": "120"})
    assert made.status_code == 303, made.text
    tenant_id = made.headers["location"].rsplit("/", 1)[1]
    api.wait_projected()
    quotas = operator.get(f"/tenants/{tenant_id}/quotas")
    assert by_id(quotas, "max_requests_per_minute") is None  # an input: no text
    assert 'value="120"' in quotas.text


def test_usage_status_and_quotas_of_a_tenant(operator: Console, tenant: UUID) -> None:
    usage = operator.get(f"/tenants/{tenant}/usage")
    assert usage.status_code == 200
    assert "Storage" in usage.text
    refused = operator.post(f"/tenants/{tenant}/status", {"action": "delete"})
    assert refused.status_code == 422
    assert "must be suspend or reactivate" in (by_id(refused, "error-message") or "")
    quotas = {
        "max_requests_per_minute": "100",
        "max_storage_gb": "10",
        "max_concurrent_connections": "10",
        "constitutional_hash": "0" * 16,
    }
    wrong = operator.post(f"/tenants/{tenant}/quotas", quotas)
    assert wrong.status_code == 422
    assert "hash" in wrong.text.lower()


# --- integrations -----------------------------------------------------------------------------


def test_integration_forms_refuse_what_the_command_refuses(
    admin: Console, monitor: Console, tenant: UUID, integration: UUID
) -> None:
    base = f"/tenants/{tenant}/integrations"
    bogus = admin.get(f"{base}/new", params={"type": "carrier-pigeon"})
    assert bogus.status_code == 422
    assert "must be one of" in (by_id(bogus, "error-message") or "")
    form = {"integration_type": "oidc", "integration_name": "Idp", **OIDC}
    assert monitor.post(base, form).status_code == 403  # the form is the executive's
    page = f"{base}/{integration}"
    assert admin.get(f"{base}/{uuid4()}").status_code == 404
    wrong = admin.post(page, {**form, "constitutional_hash": "0" * 16})
    assert wrong.status_code == 422
    assert "hash" in (by_id(wrong, "form-error") or "").lower()
    assert 'value="s"' not in wrong.text  # the secret is not sent back
    assert admin.post(f"{base}/{uuid4()}/test", {}).status_code == 404
    tested = admin.post(f"{page}/test", {"constitutional_hash": "0" * 16})
    assert tested.status_code == 303  # without script: back to the integration's page
    assert tested.headers["location"] == f"/console{page}"
    shown = admin.post(
        f"{page}/test", {"constitutional_hash": "0" * 16}, headers={"HX-Request": "true"}
    )
    assert shown.status_code == 200
    assert "hash" in shown.text.lower()


# --- role mappings ----------------------------------------------------------------------------


def test_role_mappings_need_an_integration_of_the_tenant(
    admin: Console, monitor: Console, tenant: UUID, integration: UUID
) -> None:
    base = f"/tenants/{tenant}/role-mappings"
    form = {"integration_id": str(uuid4()), "source_value": "g", "maci_role": "MONITOR"}
    foreign = admin.post(base, form)
    assert foreign.status_code == 422
    assert "choose an integration of this tenant" in foreign.text
    assert monitor.post(base, {**form, "integration_id": str(integration)}).status_code == 403
    preview = admin.get(f"{base}/preview", params={"integration_id": str(uuid4())})
    assert preview.status_code == 200
    assert "choose an integration of this tenant" in preview.text


def test_a_role_preview_takes_at_most_200_values(
    admin: Console, tenant: UUID, integration: UUID
) -> None:
    many = "\n".join(f"group-{i}" for i in range(201))
    preview = admin.get(
        f"/tenants/{tenant}/role-mappings/preview",
        params={"integration_id": str(integration), "values": many},
    )
    assert errors_of(preview) == ["give at most 200 values"]


# --- shadow -----------------------------------------------------------------------------------


def test_shadow_forms_check_their_fields(admin: Console, tenant: UUID) -> None:
    base = f"/tenants/{tenant}/shadow"
    unconfigured = admin.get(base)
    assert unconfigured.status_code == 200
    assert (by_id(unconfigured, "shadow-unconfigured") or "").startswith("Shadow mode is not")
    for form, field, message in (
        ({"action": "request_step", "target": "ten"}, "target", "must be a whole number"),
        ({"action": "roll_back", "reason": "x" * 2001}, "reason", "at most"),
        ({"action": "jump"}, "action", "must be configure"),
    ):
        refused = admin.post(base, form)
        assert refused.status_code == 422, form
        assert message in refused.text, field
    assert admin.get(f"{base}/runs/{uuid4()}").status_code == 404


# --- migrations -------------------------------------------------------------------------------


def test_migration_forms(admin: Console, monitor: Console, tenant: UUID) -> None:
    base = f"/tenants/{tenant}/migrations"
    assert monitor.get(f"{base}/new").status_code == 403
    assert admin.get(f"{base}/{uuid4()}").status_code == 404
    later = admin.get(base, params={"offset": "50"})
    assert later.status_code == 200
    assert f"/console{base}?offset=0" in later.text  # back to the first page
    gaps = admin.post(base, {"job_type": "gap_analysis", "batch_size": "lots"})
    assert gaps.status_code == 422
    assert by_id(gaps, "batch_size-error") == "must be a whole number"
    assert monitor.post(base, {"job_type": "gap_analysis"}).status_code == 403
    again = admin.post(
        base,
        {"job_type": "conversion", "parameters": "[]"},
        files={"file": ("p.json", b"{}", "application/json")},
    )
    assert again.status_code == 422
    assert by_id(again, "file-error") == "choose the file again"


def test_a_migration_file_over_the_upload_limit_is_refused(
    api: Api, admin: Console, tenant: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = replace(api.system.settings, migration_upload_max_bytes=8)
    monkeypatch.setattr(api.system, "settings", small)
    refused = admin.post(
        f"/tenants/{tenant}/migrations",
        {"job_type": "conversion"},
        files={"file": ("p.json", b'{"policy_id": "x"}', "application/json")},
    )
    assert refused.status_code == 422
    expected = "is larger than 8 bytes (ACGS_MIGRATION_UPLOAD_MAX_BYTES)"
    assert by_id(refused, "file-error") == expected


# --- signing in and out -----------------------------------------------------------------------


def test_a_bad_token_or_missing_fields_keep_the_sign_in_page(api: Api, tenant: UUID) -> None:
    visitor = Console(api, "not-a-token")
    try:
        bad = visitor.post("/sign-in/token", {"token": "not.a.token"})
        assert bad.status_code == 401
        assert "this token is not valid" in (by_id(bad, "token-error") or "")
        missing = visitor.post("/sign-in/ldap", {"tenant_slug": "x"})
        assert missing.status_code == 422
        assert errors_of(missing) == ["required", "required"]  # the username, the password
        # an access token nobody accepts and no refresh token: signed out
        home = visitor.get(f"/tenants/{tenant}")
        assert home.status_code == 303
        assert home.headers["location"] == "/console/sign-in"
        partial = visitor.get(f"/tenants/{tenant}", headers={"HX-Request": "true"})
        assert partial.status_code == 401
        assert partial.headers["HX-Redirect"] == "/console/sign-in"
        out = visitor.post("/sign-out")
        assert out.status_code == 303
        assert out.headers["location"] == "/console/sign-in"
    finally:
        visitor.close()


def test_a_suspended_tenant_s_token_no_longer_signs_in(api: Api) -> None:
    with api.client(api.token(MaciRole.EXECUTIVE)) as platform:
        tenant_id = new_tenant(api, platform, "cfs")
        member = console_of(api, MaciRole.EXECUTIVE, tenant_id=tenant_id)
        try:
            assert member.get(f"/tenants/{tenant_id}").status_code == 200
            suspended = platform.patch(
                f"/v1/tenants/{tenant_id}",
                json={"status": "suspended"},
                headers={"X-Constitutional-Hash": HASH},
            )
            assert suspended.status_code == 200, suspended.text
            api.wait_projected()
            gone = member.get(f"/tenants/{tenant_id}")
            assert gone.status_code == 303
            assert gone.headers["location"] == "/console/sign-in"
        finally:
            member.close()


# --- gaps -------------------------------------------------------------------------------------


def test_gap_filters_are_checked_and_a_review_needs_a_gap(admin: Console, tenant: UUID) -> None:
    base = f"/tenants/{tenant}/gaps"
    filtered = admin.get(base, params={"severity": "dire", "status": "open"})
    assert filtered.status_code == 422
    assert by_id(filtered, "severity-error") == "one of critical, high, medium, low"
    assert by_id(filtered, "gap-count") == "0 gaps"  # not listed with a bad filter
    missing = admin.post(f"{base}/{uuid4()}", {"action": "accept", "reason": "known"})
    assert missing.status_code == 404


def test_a_body_the_server_cannot_read_is_the_console_s_error_page(operator: Console) -> None:
    broken = operator.client.post(
        "/tenants",
        content=b"--x\r\nbad",
        headers={"content-type": "multipart/form-data", CSRF_HEADER: operator.session.csrf_token},
    )
    assert broken.status_code == 400
    assert broken.headers["content-type"].startswith("text/html")
    assert by_id(broken, "error-message") == "multipart boundary missing in Content-Type"
