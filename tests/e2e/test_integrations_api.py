"""Enterprise integrations over real HTTP, against the real database and a real slapd: the
acceptance flow (create, read redacted, test, change the password, delete) with the clear
password searched for everywhere it must not be; cross-tenant 404s; roles; validation; the
circuit breaker on a clock the test moves; the health worker; key rotation with the CLI while
the server runs; purge destroying the tenant's key."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from domain.maci import MaciRole
from domain.secrets import SecretUnreadable
from tests.peers.http import HASH, Api, ManualClock, free_port
from tests.peers.slapd import Slapd

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.ldap]
ACGS = str(Path(sys.executable).with_name("acgs"))
H = {"X-Constitutional-Hash": HASH}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["constitutional_hash"] == HASH
    return dict(error)


def _ldap(slapd: Slapd, password: str, **overrides: Any) -> dict[str, Any]:
    return {
        "server_url": slapd.ldaps_url,
        "base_dn": slapd.base_dn,
        "bind_dn": slapd.service_dn,
        "bind_password": password,
        "ca_cert_pem": slapd.ca_pem,
        "timeout_seconds": 2,
        **overrides,
    }


class Tenant:
    def __init__(self, api: Api, platform: httpx.Client, slug: str) -> None:
        created = api.create_tenant(platform, slug)
        self.id = UUID(created["tenant_id"])
        self.slug = slug
        self.api = api
        self.admin = api.client(api.token(MaciRole.EXECUTIVE, tenant_id=self.id))
        self.monitor = api.client(api.token(MaciRole.MONITOR, tenant_id=self.id))

    @property
    def base(self) -> str:
        return f"/v1/tenants/{self.id}/integrations"

    def create(self, name: str, config: dict[str, Any], kind: str = "ldap") -> httpx.Response:
        return self.admin.post(
            self.base,
            json={
                "integration_type": kind,
                "integration_name": name,
                "config": config,
                "constitutional_hash": HASH,
            },
        )


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[Tenant]:
    made = Tenant(api, platform, f"int-{unique}")
    yield made
    made.admin.close()
    made.monitor.close()


@pytest.fixture
def secret(slapd: Slapd) -> str:
    """The directory's service password: random per session, so it is a unique string to
    search for."""
    return slapd.service_password


def _everything_stored(admin_conn: psycopg.Connection[Any]) -> str:
    """The event store's raw payloads and a text dump of every table of the database."""
    tables = admin_conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    ).fetchall()
    dump = []
    for (table,) in tables:
        rows = admin_conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
        dump.extend(r[0] for r in rows)
    states = admin_conn.execute("SELECT state FROM governance_events").fetchall()
    dump.extend(bytes(s[0]).decode("utf-8", "replace") for s in states)
    return "\n".join(dump)


def test_acceptance_flow_never_stores_or_shows_the_password(
    api: Api,
    tenant: Tenant,
    slapd: Slapd,
    secret: str,
    admin_conn: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    new_secret = f"Pw2-{uuid.uuid4().hex}"
    responses: list[httpx.Response] = []

    created = tenant.create("Corporate LDAP", _ldap(slapd, secret))
    responses.append(created)
    assert created.status_code == 201, created.text
    body = created.json()
    iid = body["integration_id"]
    assert (body["integration_type"], body["enabled"], body["health_status"]) == (
        "ldap",
        True,
        "unknown",
    )
    assert body["tenant_id"] == str(tenant.id)
    api.wait_projected()

    read = tenant.admin.get(f"{tenant.base}/{iid}")
    responses.append(read)
    assert read.status_code == 200, read.text
    assert read.json()["config"]["bind_password"] == "***REDACTED***"
    assert read.json()["config"]["server_url"] == slapd.ldaps_url
    assert read.json()["config"]["user_search_filter"] == "(uid={username})"

    tested = tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H)
    responses.append(tested)
    assert tested.status_code == 200, tested.text
    assert tested.json()["test_result"] == "success"
    assert tested.json()["test_details"] | {"latency_ms": 0} == {
        "connection_established": True,
        "authentication_successful": True,
        "test_query_executed": True,
        "latency_ms": 0,
    }

    patched = tenant.admin.patch(
        f"{tenant.base}/{iid}",
        headers=H,
        json={"enabled": False, "config": {"bind_password": new_secret}},
    )
    responses.append(patched)
    assert patched.status_code == 200, patched.text
    assert patched.json()["updated_fields"] == ["config.bind_password", "enabled"]
    same = tenant.admin.patch(
        f"{tenant.base}/{iid}", headers=H, json={"config": {"bind_password": new_secret}}
    )
    responses.append(same)
    assert same.json()["updated_fields"] == []

    wrong = tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H)  # the old password
    responses.append(wrong)
    assert wrong.status_code == 422, wrong.text  # slapd has the first password
    assert wrong.json()["error"]["code"] == "INTEGRATION_AUTH_FAILED"
    details = wrong.json()["error"]["details"]["test_details"]
    assert (details["connection_established"], details["authentication_successful"]) == (
        True,
        False,
    )
    fixed = tenant.admin.patch(
        f"{tenant.base}/{iid}", headers=H, json={"config": {"bind_password": secret}}
    )
    responses.append(fixed)
    assert tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H).status_code == 200

    api.wait_projected()
    listed = tenant.monitor.get(tenant.base, params={"integration_type": "ldap"})
    responses.append(listed)
    assert listed.json()["total"] == 1
    assert listed.json()["integrations"][0]["health_status"] == "healthy"
    assert listed.json()["integrations"][0]["last_health_check"] is not None

    deleted = tenant.admin.delete(f"{tenant.base}/{iid}", headers=H)
    responses.append(deleted)
    assert deleted.status_code == 204
    api.wait_projected()
    _error(tenant.admin.get(f"{tenant.base}/{iid}"), 404, "NOT_FOUND")

    stored = _everything_stored(admin_conn)
    logs = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    shown = "\n".join(r.text + str(r.headers) for r in responses)
    assert iid in stored  # the search does see the integration's rows and events
    for clear in (secret, new_secret):
        assert clear not in stored
        assert clear not in logs
        assert clear not in shown


def test_another_tenant_gets_404_for_everything(
    api: Api, platform: httpx.Client, tenant: Tenant, slapd: Slapd, secret: str, unique: str
) -> None:
    iid = tenant.create("Mine", _ldap(slapd, secret)).json()["integration_id"]
    api.wait_projected()
    intruder = Tenant(api, platform, f"intr-{unique}")
    own = f"/v1/tenants/{intruder.id}/integrations/{iid}"
    theirs = f"{tenant.base}/{iid}"
    for response in (
        intruder.admin.get(theirs),
        intruder.admin.patch(theirs, headers=H, json={"enabled": False}),
        intruder.admin.delete(theirs, headers=H),
        intruder.admin.post(f"{theirs}/test", headers=H),
        intruder.admin.get(tenant.base),
        intruder.admin.get(own),  # the id under its own tenant
        intruder.admin.patch(own, headers=H, json={"enabled": False}),
        intruder.admin.post(f"{own}/test", headers=H),
    ):
        _error(response, 404, "NOT_FOUND")
    assert tenant.admin.get(theirs).status_code == 200  # untouched
    intruder.admin.close()
    intruder.monitor.close()


def test_every_role_reads_only_the_executive_manages(
    api: Api, tenant: Tenant, slapd: Slapd, secret: str
) -> None:
    iid = tenant.create("Roles", _ldap(slapd, secret)).json()["integration_id"]
    api.wait_projected()
    for role in MaciRole:
        with api.client(api.token(role, tenant_id=tenant.id)) as client:
            assert client.get(f"{tenant.base}/{iid}").status_code == 200, role
            assert client.get(f"{tenant.base}/health").status_code == 200, role
            patch = client.patch(f"{tenant.base}/{iid}", headers=H, json={"enabled": True})
            test = client.post(f"{tenant.base}/{iid}/test", headers=H)
            if role is MaciRole.EXECUTIVE:
                assert patch.status_code == 200
                assert test.status_code == 200
            else:
                _error(patch, 403, "FORBIDDEN")
                _error(test, 403, "FORBIDDEN")


def test_names_are_unique_per_tenant_and_type(
    api: Api, tenant: Tenant, slapd: Slapd, secret: str
) -> None:
    assert tenant.create("Directory", _ldap(slapd, secret)).status_code == 201
    _error(tenant.create("directory", _ldap(slapd, secret)), 409, "INTEGRATION_NAME_TAKEN")
    oidc = {"issuer": "https://idp.acme.test", "client_id": "c", "client_secret": "s"}
    assert tenant.create("Directory", oidc, kind="oidc").status_code == 201
    with psycopg.connect(api.system.admin_url) as conn:
        keys = conn.execute(
            "SELECT count(*) FROM integration_data_keys WHERE tenant_id = %s", [tenant.id]
        ).fetchone()
    assert keys == (2,)  # the refused create left no data key behind


def test_bad_config_lists_every_field_and_writes_nothing(
    api: Api, tenant: Tenant, slapd: Slapd
) -> None:
    head = api.head()
    response = tenant.create(
        "Bad",
        {"server_url": "http://x", "base_dn": "nope", "start_tls": "yes", "colour": "red"},
    )
    fields = {f["field"] for f in _error(response, 422, "VALIDATION_ERROR")["details"]["fields"]}
    assert fields == {
        "config.server_url",
        "config.base_dn",
        "config.start_tls",
        "config.colour",
        "config.bind_dn",
        "config.bind_password",
    }
    assert api.head() == head


def test_an_open_breaker_answers_503_and_shows_in_metrics(
    api: Api, tenant: Tenant, slapd: Slapd, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    breakers = api.system.breakers
    assert breakers is not None
    monkeypatch.setattr(breakers, "_clock", clock)
    down = _ldap(slapd, secret, server_url=f"ldaps://127.0.0.1:{free_port()}")
    iid = tenant.create("Down", down).json()["integration_id"]
    for _ in range(5):
        _error(
            tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H),
            503,
            "INTEGRATION_UNREACHABLE",
        )
    refused = _error(
        tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H), 503, "DEPENDENCY_UNAVAILABLE"
    )
    assert refused["details"]["retry_after_seconds"] == 30.0
    metrics = httpx.get(f"{api.url}/metrics").text
    assert f'acgs_integration_circuit_state{{integration_id="{iid}"}} 2.0' in metrics
    api.wait_projected()
    health = tenant.monitor.get(f"{tenant.base}/health").json()
    assert health["overall_status"] == "unhealthy"
    assert health["integrations"][0]["circuit_breaker"] == "open"

    clock.now += 30  # half-open: one trial goes through (and fails again)
    _error(
        tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H), 503, "INTEGRATION_UNREACHABLE"
    )
    _error(tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H), 503, "DEPENDENCY_UNAVAILABLE")


def test_the_health_worker_records_checks_and_emits_only_changes(
    api: Api, tenant: Tenant, slapd: Slapd, secret: str, admin_conn: psycopg.Connection[Any]
) -> None:
    iid = tenant.create("Watched", _ldap(slapd, secret)).json()["integration_id"]
    api.wait_projected()
    checker = api.system.health_checker()

    def changes() -> int:
        row = admin_conn.execute(
            "SELECT count(*) FROM governance_events WHERE originator_id = %s AND topic LIKE %s",
            [iid, "%HealthChanged"],
        ).fetchone()
        return int(row[0]) if row else 0

    def row() -> tuple[Any, ...]:
        found = admin_conn.execute(
            "SELECT health_status, last_health_check FROM enterprise_integrations "
            "WHERE integration_id = %s",
            [iid],
        ).fetchone()
        assert found is not None
        return tuple(found)

    assert checker.check_all() >= 1
    first = row()
    assert first[0] == "healthy"
    assert changes() == 1
    checker.check_all()
    api.wait_projected()
    second = row()
    assert second[0] == "healthy"
    assert second[1] > first[1]  # checked again...
    assert changes() == 1  # ...but nothing changed, so no event


def test_key_rotation_with_the_cli_while_the_server_runs(
    api: Api, tenant: Tenant, slapd: Slapd, secret: str, admin_conn: psycopg.Connection[Any]
) -> None:
    iid = tenant.create("Rotated", _ldap(slapd, secret)).json()["integration_id"]

    def versions() -> list[int]:
        rows = admin_conn.execute(
            "SELECT kek_version FROM integration_data_keys WHERE tenant_id = %s", [tenant.id]
        ).fetchall()
        return [int(r[0]) for r in rows]

    assert versions() == [1]
    api.wait_projected()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(
        ACGS_DATABASE_URL=api.system.admin_url,
        ACGS_DATA_DIR=str(api.system.settings.data_dir),
        ACGS_LOG_LEVEL="WARNING",
    )
    done = subprocess.run(
        [ACGS, "keys", "rotate", "--tenant", tenant.slug],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "version 2, 1 data key(s) rewrapped" in done.stdout
    assert versions() == [2]
    sealer = api.system.sealer
    assert sealer is not None
    sealer._cache.clear()
    assert tenant.admin.post(f"{tenant.base}/{iid}/test", headers=H).status_code == 200
    api.wait_projected()
    audited = admin_conn.execute(
        "SELECT count(*) FROM tenant_audit_log WHERE tenant_id = %s AND action = %s",
        [tenant.id, "rotate_tenant_key"],
    ).fetchone()
    assert audited == (1,)


def test_purging_the_tenant_destroys_its_key(
    api: Api, platform: httpx.Client, tenant: Tenant, slapd: Slapd, secret: str
) -> None:
    iid = UUID(tenant.create("Doomed", _ldap(slapd, secret)).json()["integration_id"])
    integration = _integration(api, tenant.id, iid)
    sealed = integration.config["bind_password"]
    key_file = api.system.settings.data_dir / "keys" / "integrations" / f"{tenant.id}.json"
    assert key_file.exists()
    purged = platform.delete(f"/v1/tenants/{tenant.id}", params={"immediate": "true"}, headers=H)
    assert purged.status_code == 202, purged.text
    assert not key_file.exists()
    sealer = api.system.sealer
    assert sealer is not None
    with pytest.raises(SecretUnreadable):
        sealer.open(tenant.id, integration.config_key_id, "config.bind_password", sealed)
    api.wait_projected()
    with psycopg.connect(api.system.admin_url) as conn:
        left = conn.execute(
            "SELECT (SELECT count(*) FROM integration_data_keys WHERE tenant_id = %s), "
            "(SELECT count(*) FROM enterprise_integrations WHERE tenant_id = %s)",
            [tenant.id, tenant.id],
        ).fetchone()
    assert left == (0, 0)


def _integration(api: Api, tenant_id: UUID, iid: UUID) -> Any:
    assert api.system.integrations is not None
    return api.system.integrations.load(tenant_id, iid)
