"""The policy registry and the decision API over real HTTP on the real database and regorus:
submission (legacy and Rego), activation and rollback, retirement, isolation between tenants,
system-wide policies, batches, decision logs and evaluation errors."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.http.quotas.storage import StorageMeter
from domain.maci import MaciRole
from domain.tenancy import SYSTEM_TENANT_ID
from tests.e2e.policy_support import (
    SAMPLES,
    WRITE,
    activate,
    decide,
    decide_batch,
    rego,
    submit,
    submitted,
)
from tests.peers.http import HASH, Api, ManualClock

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

FINANCE = (SAMPLES / "json_00_finance.json").read_text()
SERVICE_READ = {
    "user": {"kind": "service", "scopes": ["finance:read"]},
    "context": {"mtls": True},
    "action": "read",
}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "constitutional_hash"}
    assert body["error"]["code"] == code, body
    assert body["error"]["constitutional_hash"] == HASH
    return dict(body["error"])


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        self.id = UUID(api.create_tenant(platform, slug)["tenant_id"])
        self._api = api
        self._clients: list[httpx.Client] = []

    def client(self, role: MaciRole = MaciRole.LEGISLATIVE) -> httpx.Client:
        client = self._api.client(self._api.token(role, tenant_id=self.id, sub=f"{role}-user"))
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"pol-{unique}")
    yield made
    made.close()


@pytest.fixture
def other(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"pol-other-{unique}")
    yield made
    made.close()


def _activated(client: httpx.Client, tenant: UUID, key: str, version: int) -> dict[str, Any]:
    response = activate(client, tenant, key, version)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- submission ---------------------------------------------------------------------------------


def test_a_legacy_json_policy_is_converted_reported_activated_and_decides(
    api: Api, tenant: Tenant
) -> None:
    author = tenant.client()
    body = submitted(author, tenant.id, FINANCE, "json")
    assert body["constitutional_hash"] == HASH
    [added] = body["policies"]
    assert added["policy_id"] == "finance-api"
    assert (added["version"], added["status"], added["active_version"]) == (1, "draft", None)
    assert added["conversion_status"] == "converted"
    assert body["report"]["totals"]["converted"] == 1
    assert body["report"]["policies"][0]["policy_id"] == "finance-api"
    # a draft decides nothing
    _error(decide(author, tenant.id, "finance-api", SERVICE_READ), 404, "NOT_FOUND")
    activated = _activated(author, tenant.id, "finance-api", 1)
    assert (activated["active_version"], activated["rolled_back"]) == (1, False)
    answer = decide(tenant.client(MaciRole.MONITOR), tenant.id, "finance-api", SERVICE_READ)
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    assert set(decision) == {
        "decision_id",
        "allow",
        "deny",
        "obligations",
        "policy_id",
        "policy_version",
        "constitutional_hash",
    }
    assert decision["allow"] is True
    assert decision["obligations"] == [{"type": "audit"}]
    assert (decision["policy_id"], decision["policy_version"]) == ("finance-api", 1)
    UUID(decision["decision_id"])
    # the read model: the policy, its versions, one version in full
    api.wait_projected()
    one = author.get(f"/v1/tenants/{tenant.id}/policies/finance-api").json()
    assert (one["status"], one["active_version"], one["latest_version"]) == ("active", 1, 1)
    assert [v["version"] for v in one["versions"]] == [1]
    version = author.get(f"/v1/tenants/{tenant.id}/policies/finance-api/versions/1").json()
    assert version["source"] == FINANCE
    assert "package acgs.policies.finance_api" in version["rego"]
    assert version["report"]["status"] == "converted"
    assert len(version["sha256"]) == 64


def test_a_source_that_does_not_convert_is_422_with_line_and_column(tenant: Tenant) -> None:
    author = tenant.client()
    broken = (SAMPLES / "dsl_20_syntax_error.rules").read_text()
    error = _error(submit(author, tenant.id, broken, "dsl"), 422, "POLICY_CONVERSION_FAILED")
    assert isinstance(error["details"]["line"], int)
    assert error["details"]["line"] > 0
    assert isinstance(error["details"]["column"], int)
    assert error["details"]["column"] > 0
    assert error["details"]["errors"][0]["policy_id"] == "broken-payroll"
    assert error["details"]["report"]["totals"]["failed"] == 1
    malformed = (SAMPLES / "json_22_malformed.json").read_text()
    error = _error(submit(author, tenant.id, malformed), 422, "POLICY_CONVERSION_FAILED")
    assert error["details"]["line"]
    assert error["details"]["column"]
    # nothing was registered
    listed = author.get(f"/v1/tenants/{tenant.id}/policies").json()
    assert listed["total"] == 0


def test_a_source_with_one_broken_policy_registers_none_of_its_policies(
    api: Api, tenant: Tenant
) -> None:
    author = tenant.client()
    text = (SAMPLES / "dsl_21_two_policies_one_broken.rules").read_text()
    error = _error(submit(author, tenant.id, text), 422, "POLICY_CONVERSION_FAILED")
    assert [e["policy_id"] for e in error["details"]["errors"]] == ["wiki-admin"]
    api.wait_projected()
    assert author.get(f"/v1/tenants/{tenant.id}/policies").json()["total"] == 0


def test_bad_submissions_list_every_bad_field(tenant: Tenant) -> None:
    author = tenant.client()
    response = author.post(
        f"/v1/tenants/{tenant.id}/policies",
        json={"format": 5, "extra": 1, "constitutional_hash": HASH},
    )
    fields = {f["field"] for f in _error(response, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {"source", "format", "extra"}
    error = _error(submit(author, tenant.id, FINANCE, "xml"), 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "format"
    _error(
        author.post(f"/v1/tenants/{tenant.id}/policies", json={"source": FINANCE}),
        400,
        "CONSTITUTIONAL_HASH_REQUIRED",
    )


def test_rego_is_compiled_and_must_carry_the_constitutional_guard(tenant: Tenant) -> None:
    author = tenant.client()
    body = submitted(author, tenant.id, rego("admins", "admin"))
    assert body["policies"][0]["policy_id"] == "admins"
    assert body["report"]["policies"][0]["format"] == "rego"
    assert body["report"]["policies"][0]["constitutional_compliant"] is True
    unguarded = (
        "package acgs.custom.open\n\ndefault allow := true\n\ndeny := set()\n\n"
        "obligations := set()\n"
    )
    error = _error(submit(author, tenant.id, unguarded), 422, "POLICY_CONVERSION_FAILED")
    assert error["details"]["errors"][0]["code"] == "CONSTITUTIONAL_GUARD_MISSING"
    accepted = submitted(author, tenant.id, unguarded, allow_unguarded=True)
    assert accepted["report"]["policies"][0]["constitutional_compliant"] is False
    bad = "package acgs.custom.bad\n\nallow if {\n\tinput.x ==\n}\n"
    error = _error(submit(author, tenant.id, bad, "rego"), 422, "POLICY_CONVERSION_FAILED")
    assert error["details"]["line"] >= 4
    assert error["details"]["column"] > 0


def test_a_multipart_upload_is_accepted(tenant: Tenant, unique: str) -> None:
    author = tenant.client()
    upload = f"/v1/tenants/{tenant.id}/policies/upload"
    body = (
        "--xyz\r\n"
        'Content-Disposition: form-data; name="file"; filename="finance.json"\r\n'
        "Content-Type: application/json\r\n\r\n"
        f"{FINANCE}\r\n"
        "--xyz\r\n"
        'Content-Disposition: form-data; name="constitutional_hash"\r\n\r\n'
        f"{HASH}\r\n"
        "--xyz--\r\n"
    ).encode()
    key = {
        "Idempotency-Key": f"upload-{unique}",
        "Content-Type": "multipart/form-data; boundary=xyz",
    }
    response = author.post(upload, content=body, headers=key)
    assert response.status_code == 201, response.text
    assert response.json()["policies"][0]["policy_id"] == "finance-api"
    again = author.post(upload, content=body, headers=key)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["policies"][0]["version"] == 1
    missing = author.post(
        upload,
        files={"other": ("x.json", b"{}", "application/json")},
        data={"constitutional_hash": HASH},
    )
    assert _error(missing, 422, "VALIDATION_ERROR")["details"]["fields"][0]["field"] == "file"
    as_json = author.post(upload, json={"source": FINANCE})
    _error(as_json, 415, "UNSUPPORTED_MEDIA_TYPE")
    broken = author.post(
        upload,
        content=b"--b\r\nno headers\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b", **key},
    )
    assert broken.status_code in (409, 422), broken.text  # never a 500


# --- versions, activation, rollback, retirement ---------------------------------------------------


def test_versions_are_activated_and_rolled_back(api: Api, tenant: Tenant) -> None:
    author = tenant.client()
    assert submitted(author, tenant.id, rego("gate", "admin"))["policies"][0]["version"] == 1
    assert submitted(author, tenant.id, rego("gate", "editor"))["policies"][0]["version"] == 2
    editor = {"user": {"role": "editor"}}
    _activated(author, tenant.id, "gate", 1)
    assert decide(author, tenant.id, "gate", editor).json()["allow"] is False
    second = _activated(author, tenant.id, "gate", 2)
    assert (second["previous_version"], second["rolled_back"]) == (1, False)
    now = decide(author, tenant.id, "gate", editor).json()
    assert (now["allow"], now["policy_version"]) == (True, 2)
    back = _activated(author, tenant.id, "gate", 1)
    assert (back["active_version"], back["previous_version"], back["rolled_back"]) == (1, 2, True)
    again = decide(author, tenant.id, "gate", editor).json()
    assert (again["allow"], again["policy_version"], again["deny"]) == (False, 1, ["not admin"])
    same = _activated(author, tenant.id, "gate", 1)
    assert same["changed"] is False
    _error(activate(author, tenant.id, "gate", 9), 404, "NOT_FOUND")
    api.wait_projected()
    with psycopg.connect(api.system.admin_url) as conn:
        kinds = [
            row[0].rsplit(".", 1)[1]
            for row in conn.execute(
                "SELECT topic FROM governance_events e JOIN policies p "
                "ON p.policy_id = e.originator_id WHERE p.tenant_id = %s "
                "AND p.policy_key = 'gate' ORDER BY originator_version",
                [tenant.id],
            )
        ]
    assert kinds == [
        "Registered",
        "VersionAdded",
        "VersionAdded",
        "Activated",
        "Activated",
        "RolledBack",
    ]


def test_a_retired_policy_decides_nothing_and_changes_no_more(api: Api, tenant: Tenant) -> None:
    author = tenant.client()
    submitted(author, tenant.id, rego("old", "admin"))
    _activated(author, tenant.id, "old", 1)
    assert decide(author, tenant.id, "old", {}).status_code == 200
    retired = author.delete(f"/v1/tenants/{tenant.id}/policies/old", headers=WRITE)
    assert retired.status_code == 200, retired.text
    assert retired.json()["status"] == "retired"
    _error(decide(author, tenant.id, "old", {}), 404, "NOT_FOUND")
    _error(activate(author, tenant.id, "old", 1), 409, "INVALID_STATE_TRANSITION")
    _error(submit(author, tenant.id, rego("old", "x")), 409, "INVALID_STATE_TRANSITION")
    api.wait_projected()
    listed = author.get(f"/v1/tenants/{tenant.id}/policies", params={"status": "retired"}).json()
    assert [p["policy_id"] for p in listed["policies"]] == ["old"]


def test_only_legislative_and_executive_author_every_role_reads_and_decides(
    api: Api, tenant: Tenant
) -> None:
    submitted(tenant.client(MaciRole.EXECUTIVE), tenant.id, rego("roles", "admin"))
    _activated(tenant.client(MaciRole.EXECUTIVE), tenant.id, "roles", 1)
    api.wait_projected()
    for role in MaciRole:
        client = tenant.client(role)
        may_author = role in (MaciRole.EXECUTIVE, MaciRole.LEGISLATIVE)
        response = submit(client, tenant.id, rego(f"by_{role.value.lower()}", "admin"))
        assert response.status_code == (201 if may_author else 403), (role, response.text)
        assert client.get(f"/v1/tenants/{tenant.id}/policies/roles").status_code == 200
        assert decide(client, tenant.id, "roles", {}).status_code == 200


# --- isolation and system-wide policies -----------------------------------------------------------


def test_a_tenant_can_neither_read_nor_evaluate_nor_change_another_tenants_policy(
    api: Api, tenant: Tenant, other: Tenant
) -> None:
    author = tenant.client()
    submitted(author, tenant.id, rego("secret", "admin"))
    _activated(author, tenant.id, "secret", 1)
    api.wait_projected()
    stranger = other.client(MaciRole.EXECUTIVE)
    # through the owner's path: the tenant itself is not found
    for response in (
        stranger.get(f"/v1/tenants/{tenant.id}/policies"),
        stranger.get(f"/v1/tenants/{tenant.id}/policies/secret"),
        stranger.get(f"/v1/tenants/{tenant.id}/policies/secret/versions/1"),
        decide(stranger, tenant.id, "secret", {}),
        activate(stranger, tenant.id, "secret", 1),
        stranger.delete(f"/v1/tenants/{tenant.id}/policies/secret", headers=WRITE),
    ):
        _error(response, 404, "NOT_FOUND")
    # through its own path: no such policy
    for response in (
        stranger.get(f"/v1/tenants/{other.id}/policies/secret"),
        stranger.get(f"/v1/tenants/{other.id}/policies/secret/versions/1"),
        decide(stranger, other.id, "secret", {}),
        decide_batch(stranger, other.id, [("secret", {})]),
        activate(stranger, other.id, "secret", 1),
    ):
        _error(response, 404, "NOT_FOUND")
    assert stranger.get(f"/v1/tenants/{other.id}/policies").json()["total"] == 0
    # row-level security: the other tenant's session sees none of the rows
    with psycopg.connect(api.system.app_conninfo) as conn:
        conn.execute("SELECT set_config('app.current_tenant_id', %s, false)", [str(other.id)])
        for table in ("policies", "policy_versions"):
            rows = conn.execute(
                f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                [tenant.id],
            ).fetchone()
            assert rows == (0,), table


def test_system_wide_policies_are_read_by_all_and_written_only_by_platform_principals(
    api: Api, platform: httpx.Client, tenant: Tenant, unique: str
) -> None:
    key = f"platform-{unique}"
    added = submitted(platform, SYSTEM_TENANT_ID, rego(key.replace("-", "_"), "admin"))
    key = added["policies"][0]["policy_id"]
    assert added["policies"][0]["system_wide"] is True
    _activated(platform, SYSTEM_TENANT_ID, key, 1)
    api.wait_projected()
    for role in (MaciRole.MONITOR, MaciRole.LEGISLATIVE, MaciRole.EXECUTIVE):
        client = tenant.client(role)
        listed = client.get(f"/v1/tenants/{tenant.id}/policies", params={"system_wide": True})
        assert key in [p["policy_id"] for p in listed.json()["policies"]], listed.text
        one = client.get(f"/v1/tenants/{tenant.id}/policies/{key}").json()
        assert (one["system_wide"], one["active_version"]) == (True, 1)
        assert client.get(f"/v1/tenants/{tenant.id}/policies/{key}/versions/1").status_code == 200
        decision = decide(client, tenant.id, key, {"user": {"role": "admin"}})
        assert decision.status_code == 200
        assert decision.json()["allow"] is True
        # writing it: refused through the tenant's path, unknown through the system's
        _error(
            activate(client, tenant.id, key, 1),
            403,
            "FORBIDDEN",
        )
        _error(
            client.delete(f"/v1/tenants/{tenant.id}/policies/{key}", headers=WRITE),
            403,
            "FORBIDDEN",
        )
        _error(activate(client, SYSTEM_TENANT_ID, key, 1), 404, "NOT_FOUND")
        _error(submit(client, SYSTEM_TENANT_ID, rego("x", "y")), 404, "NOT_FOUND")
    # a tenant's own policy of the same id shadows the system-wide one, for that tenant only
    author = tenant.client()
    submitted(author, tenant.id, rego(key, "editor"))
    _activated(author, tenant.id, key, 1)
    own = decide(author, tenant.id, key, {"user": {"role": "editor"}}).json()
    assert own["allow"] is True
    with psycopg.connect(api.system.admin_url) as conn:
        row = conn.execute(
            "SELECT tenant_id, system_wide FROM policies WHERE policy_key = %s AND system_wide",
            [key],
        ).fetchone()
    assert row == (None, True)


# --- batches --------------------------------------------------------------------------------------


def test_a_batch_answers_each_request_in_order(api: Api, tenant: Tenant) -> None:
    author = tenant.client()
    submitted(author, tenant.id, rego("admins", "admin"))
    submitted(author, tenant.id, rego("editors", "editor"))
    _activated(author, tenant.id, "admins", 1)
    _activated(author, tenant.id, "editors", 1)
    requests = [
        ("admins", {"user": {"role": "admin"}}),
        ("editors", {"user": {"role": "admin"}}),
        ("editors", {"user": {"role": "editor"}}),
        ("admins", {"user": {"role": "editor"}, "constitutional_hash": "0000000000000000"}),
    ]
    response = decide_batch(author, tenant.id, requests)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["constitutional_hash"] == HASH
    results = body["results"]
    assert [r["allow"] for r in results] == [True, False, True, False]
    assert [r["policy_id"] for r in results] == [k for k, _ in requests]
    assert results[3]["deny"] == ["constitutional hash mismatch"]
    assert len({r["decision_id"] for r in results}) == 4
    thousand = [("admins", {"user": {"role": "admin" if i % 2 else "x"}}) for i in range(1000)]
    big = decide_batch(author, tenant.id, thousand)
    assert big.status_code == 200
    assert [r["allow"] for r in big.json()["results"]] == [bool(i % 2) for i in range(1000)]
    too_many = decide_batch(author, tenant.id, [*thousand, thousand[0]])
    _error(too_many, 422, "VALIDATION_ERROR")
    _error(decide_batch(author, tenant.id, []), 422, "VALIDATION_ERROR")
    missing = decide_batch(author, tenant.id, [("admins", {}), ("nope", {})])
    assert _error(missing, 404, "NOT_FOUND")["details"] == {"policy_id": "nope", "index": 1}
    both = author.post(
        f"/v1/tenants/{tenant.id}/decisions",
        json={"policy_id": "admins", "input": {}, "requests": []},
    )
    fields = {f["field"] for f in _error(both, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {"policy_id", "input"}
    wrong_hash = author.post(
        f"/v1/tenants/{tenant.id}/decisions",
        json={"policy_id": "admins", "input": {}, "constitutional_hash": "0000000000000000"},
    )
    _error(wrong_hash, 409, "CONSTITUTIONAL_HASH_MISMATCH")


# --- decision logs, audit, evaluation errors ------------------------------------------------------


def _log_rows(api: Api, tenant: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(api.system.admin_url) as conn:
        cur = conn.execute(
            "SELECT decision_id, policy_key, policy_version, input_sha256, input, allow, deny, "
            "obligations, latency_ms, principal, constitutional_hash FROM decision_logs "
            "WHERE tenant_id = %s ORDER BY decided_at",
            [tenant],
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_every_decision_is_logged_and_counted_and_denials_are_audited(
    api: Api, tenant: Tenant
) -> None:
    recorder = api.system.decision_log
    assert recorder is not None
    recorder.flush()
    made, logged = recorder.made, recorder.logged
    author = tenant.client()
    submitted(author, tenant.id, rego("logged", "admin"))
    _activated(author, tenant.id, "logged", 1)
    allowed = decide(author, tenant.id, "logged", {"user": {"role": "admin", "ssn": "1"}}).json()
    denied = decide(author, tenant.id, "logged", {"user": {"role": "guest"}}).json()
    assert (recorder.made - made) == 2
    assert recorder.flush() >= 2
    assert (recorder.logged - logged) == (recorder.made - made)
    assert recorder.dropped == 0
    rows = _log_rows(api, tenant.id)
    assert [str(r["decision_id"]) for r in rows] == [allowed["decision_id"], denied["decision_id"]]
    first = rows[0]
    assert (first["policy_key"], first["policy_version"], first["allow"]) == ("logged", 1, True)
    assert first["input"] is None  # the tenant has not enabled input logging
    assert len(first["input_sha256"]) == 64
    assert first["principal"] == "LEGISLATIVE-user"
    assert first["constitutional_hash"] == HASH
    assert first["latency_ms"] > 0
    assert rows[1]["deny"] == ["not admin"]
    # the denial is a governance audit event
    api.wait_projected()
    with psycopg.connect(api.system.admin_url) as conn:
        audited = conn.execute(
            "SELECT event_category, action, result, target_resource, details->>'decision_id' "
            "FROM tenant_audit_log WHERE tenant_id = %s AND action = 'policy_decision'",
            [tenant.id],
        ).fetchall()
    assert audited == [
        ("governance", "policy_decision", "denied", "policy/logged", denied["decision_id"])
    ]
    # the counters are served
    with api.client() as anonymous:
        metrics = anonymous.get("/metrics").text
    assert f"acgs_decisions_logged_total {float(recorder.logged)}" in metrics
    assert "acgs_decisions_dropped_total 0.0" in metrics


def test_a_tenant_may_keep_inputs_with_masked_fields(api: Api, tenant: Tenant) -> None:
    admin = tenant.client(MaciRole.EXECUTIVE)
    settings = admin.put(
        f"/v1/tenants/{tenant.id}/decision-log/settings",
        json={"log_input": True, "mask_fields": ["user.ssn", "card.number"]},
        headers=WRITE,
    )
    assert settings.status_code == 200, settings.text
    _error(
        tenant.client().put(
            f"/v1/tenants/{tenant.id}/decision-log/settings",
            json={"log_input": False},
            headers=WRITE,
        ),
        403,
        "FORBIDDEN",
    )
    bad = admin.put(
        f"/v1/tenants/{tenant.id}/decision-log/settings",
        json={"log_input": True, "mask_fields": ["no spaces allowed"]},
        headers=WRITE,
    )
    _error(bad, 422, "VALIDATION_ERROR")
    submitted(admin, tenant.id, rego("masked", "admin"))
    _activated(admin, tenant.id, "masked", 1)
    document = {"user": {"role": "admin", "ssn": "123-45-6789"}, "card": {"number": "4111"}}
    decide(admin, tenant.id, "masked", document)
    assert api.system.decision_log is not None
    api.system.decision_log.flush()
    [row] = _log_rows(api, tenant.id)
    assert row["input"] == {
        "user": {"role": "admin", "ssn": "***"},
        "card": {"number": "***"},
        "constitutional_hash": HASH,
    }
    assert "123-45-6789" not in json.dumps(row, default=str)
    view = admin.get(f"/v1/tenants/{tenant.id}/decision-log/settings").json()
    assert (view["log_input"], view["mask_fields"]) == (True, ["user.ssn", "card.number"])


def test_an_evaluation_error_is_a_500_in_the_envelope_and_counted_never_an_allow(
    api: Api, tenant: Tenant
) -> None:
    author = tenant.client()
    module = (
        "package acgs.custom.fragile\n\n"
        f'constitutional_hash := "{HASH}"\n\n'
        "default allow := false\n\n"
        "allow if {\n\tinput.constitutional_hash == constitutional_hash\n"
        "\tto_number(input.amount) > 10\n}\n\n"
        'deny contains "constitutional hash mismatch" if '
        "input.constitutional_hash != constitutional_hash\n\n"
        "obligations := set()\n"
    )
    submitted(author, tenant.id, module)
    _activated(author, tenant.id, "fragile", 1)
    assert decide(author, tenant.id, "fragile", {"amount": "20"}).json()["allow"] is True
    service = api.system.decisions
    assert service is not None
    errors = service.evaluation_errors
    failed = decide(author, tenant.id, "fragile", {"amount": "twenty"})
    error = _error(failed, 500, "DECISION_EVALUATION_FAILED")
    assert error["details"]["policy_id"] == "fragile"
    assert error["details"]["policy_version"] == 1
    assert service.evaluation_errors == errors + 1
    batch = decide_batch(author, tenant.id, [("fragile", {"amount": "20"}), ("fragile", {})])
    assert batch.status_code == 200  # an absent amount is undefined, not an error
    batch = decide_batch(
        author, tenant.id, [("fragile", {"amount": "20"}), ("fragile", {"amount": "x"})]
    )
    _error(batch, 500, "DECISION_EVALUATION_FAILED")
    with api.client() as anonymous:
        metrics = anonymous.get("/metrics").text
    assert f"acgs_decision_evaluation_errors_total {float(service.evaluation_errors)}" in metrics


def test_a_policys_versions_count_toward_the_tenants_storage(
    api: Api, platform: httpx.Client, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    monkeypatch.setattr(api.services, "storage", StorageMeter(api.system.database, clock=clock))

    def used_bytes() -> float:
        clock.now += 11  # past the cached figure
        usage = platform.get(f"/v1/tenants/{tenant.id}").json()["usage_stats"]
        return float(usage["current_storage_gb"]) * 1024**3

    before = used_bytes()
    # 300 KiB of random base64 in comments: PostgreSQL cannot compress it
    noise = base64.b64encode(secrets.token_bytes(300 * 1024 * 3 // 4)).decode()
    comments = "\n".join(f"# {noise[i : i + 100]}" for i in range(0, len(noise), 100))
    source = f'{comments}\nPOLICY bulky\nDEFAULT deny\nRULE r WHEN user.role == "x" THEN ALLOW\n'
    submitted(tenant.client(), tenant.id, source, "dsl")
    api.wait_projected()
    assert used_bytes() - before >= len(noise)


class _FullStorage(StorageMeter):
    """The real meter, except that one tenant's storage is used up."""

    def __init__(self, real: StorageMeter, full: UUID) -> None:
        self._real, self._full = real, full

    async def bytes_used(self, tenant_id: UUID) -> int:
        if tenant_id == self._full:
            return 10**15
        return await self._real.bytes_used(tenant_id)


def test_a_tenant_out_of_storage_still_gets_decisions(
    api: Api, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    author = tenant.client()
    [added] = submitted(author, tenant.id, FINANCE, "json")["policies"]
    _activated(author, tenant.id, added["policy_id"], added["version"])
    monkeypatch.setattr(api.services, "storage", _FullStorage(api.services.storage, tenant.id))
    # a write that stores something is refused ...
    _error(submit(author, tenant.id, FINANCE, "json"), 403, "STORAGE_QUOTA_EXCEEDED")
    # ... a decision stores nothing the quota counts: one, a batch, with a trailing or doubled slash
    monitor = tenant.client(MaciRole.MONITOR)
    answer = decide(monitor, tenant.id, "finance-api", SERVICE_READ)
    assert answer.status_code == 200, answer.text
    assert answer.json()["allow"] is True
    batch = decide_batch(monitor, tenant.id, [("finance-api", SERVICE_READ)] * 2)
    assert batch.status_code == 200, batch.text
    body = {"policy_id": "finance-api", "input": SERVICE_READ}
    for path in (f"/v1/tenants/{tenant.id}/decisions/", f"/v1//tenants/{tenant.id}/decisions"):
        assert monitor.post(path, json=body).status_code == 200, path


def test_the_document_lists_the_storage_quota_refusal_for_writes_that_store_and_not_decisions(
    api: Api,
) -> None:
    with api.client() as anonymous:
        paths = anonymous.get("/schema").json()["paths"]

    def refusals(path: str, method: str) -> set[str]:
        forbidden = paths[path][method]["responses"].get("403", {})
        examples = forbidden.get("content", {}).get("application/json", {}).get("examples", {})
        return {example["value"]["error"]["code"] for example in examples.values()}

    decide = "/v1/tenants/{tenant_id}/decisions"
    assert "STORAGE_QUOTA_EXCEEDED" not in refusals(decide, "post")
    assert "FORBIDDEN" in refusals(decide, "post")  # its own refusals stay
    writes = [
        (path, method)
        for path, item in paths.items()
        for method, operation in item.items()
        if method in {"post", "put", "patch", "delete"}
        and operation.get("security")
        and path != decide
    ]
    assert ("/v1/tenants/{tenant_id}/policies", "post") in writes
    for path, method in writes:
        assert "STORAGE_QUOTA_EXCEEDED" in refusals(path, method), (path, method)
