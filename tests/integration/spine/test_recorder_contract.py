"""The tenant-scoped PostgreSQL recorder keeps the eventsourcing library's application-recorder
contract (the library's own tests, `eventsourcing.tests.persistence`), each test on a fresh
migrated database; and it reports refused saves as the write side's typed errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.tests.persistence import ApplicationRecorderTestCase
from eventsourcing.utils import Environment
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from domain.persistence import AggregatePinned, ClaimTaken
from domain.tenancy import acting_for
from infra.postgres import event_store
from infra.postgres.database import APP_ROLE, role_conninfo
from infra.postgres.event_store import TenantScopedApplicationRecorder, TenantScopedFactory
from infra.postgres.migrate import migrate

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
TENANT = UUID("5a1e5a1e-0000-4000-8000-000000000001")


def _database_url(admin_url: str, dbname: str) -> str:
    return make_conninfo(admin_url, dbname=dbname)


@pytest.fixture(scope="module")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database to copy for each contract test (copying is much faster than
    migrating)."""
    name = f"acgs_contract_tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    migrate(_database_url(pg_admin_url, name))
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _factory(url: str) -> TenantScopedFactory:
    params = conninfo_to_dict(url)
    env = Environment(
        "governance",
        {
            "POSTGRES_DBNAME": str(params["dbname"]),
            "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
            "POSTGRES_PORT": str(params.get("port", "5432")),
            "POSTGRES_USER": str(params.get("user", "postgres")),
            "POSTGRES_PASSWORD": str(params.get("password", "")),
            "CREATE_TABLE": "n",
        },
    )
    return TenantScopedFactory(env)


class TestTenantScopedRecorderContract(ApplicationRecorderTestCase[Any]):
    """The library's contract, as one tenant (the contract's writer threads act for it too).
    The recorder connects as the database owner, so the library's own notification reads, which
    set no tenant, see the log as the projector does."""

    admin_url: ClassVar[str]
    template: ClassVar[str]

    def setUp(self) -> None:
        self.dbname = f"acgs_contract_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.dbname} TEMPLATE {self.template}")
        self.factory = _factory(_database_url(self.admin_url, self.dbname))
        self._tenant = event_store.current_tenant
        event_store.current_tenant = lambda: TENANT  # type: ignore[assignment]

    def tearDown(self) -> None:
        event_store.current_tenant = self._tenant
        self.factory.close()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {self.dbname} WITH (FORCE)")

    def create_recorder(self) -> TenantScopedApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, TenantScopedApplicationRecorder)
        return recorder


@pytest.fixture(autouse=True)
def _contract_database(request: pytest.FixtureRequest) -> None:
    if request.cls is TestTenantScopedRecorderContract:
        request.cls.admin_url = request.getfixturevalue("pg_admin_url")
        request.cls.template = request.getfixturevalue("template_db")


# --- typed refusals ------------------------------------------------------------------------------


@pytest.fixture
def recorder(template_db: str, pg_admin_url: str) -> Iterator[TenantScopedApplicationRecorder]:
    dbname = f"acgs_refusal_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname} TEMPLATE {template_db}")
    # as the service's role, row-level security and all
    factory = _factory(role_conninfo(_database_url(pg_admin_url, dbname), APP_ROLE))
    recorder = factory.application_recorder()
    assert isinstance(recorder, TenantScopedApplicationRecorder)
    yield recorder
    factory.close()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {dbname} WITH (FORCE)")


def _event(aggregate: UUID, version: int) -> StoredEvent:
    return StoredEvent(aggregate, version, "topic", b"{}")


def test_a_taken_claim_is_claim_taken_with_its_kind(
    recorder: TenantScopedApplicationRecorder,
) -> None:
    with acting_for(TENANT):
        recorder.insert_events([_event(uuid.uuid4(), 1)], claims=[("tenant_slug", "acme")])
        with pytest.raises(ClaimTaken) as refused:
            recorder.insert_events([_event(uuid.uuid4(), 1)], claims=[("tenant_slug", "acme")])
        assert refused.value.kind == "tenant_slug"
        with pytest.raises(ClaimTaken) as refused:
            recorder.insert_events(
                [_event(uuid.uuid4(), 1)],
                claims=[("tenant_name", "acme"), ("tenant_name", "acme")],
            )
        assert refused.value.kind == "tenant_name"


def test_appending_to_another_tenants_aggregate_is_aggregate_pinned(
    recorder: TenantScopedApplicationRecorder,
) -> None:
    aggregate = uuid.uuid4()
    with acting_for(TENANT):
        recorder.insert_events([_event(aggregate, 1)])
    with acting_for(uuid.uuid4()), pytest.raises(AggregatePinned):
        recorder.insert_events([_event(aggregate, 2)])


def test_a_version_recorded_already_stays_the_librarys_integrity_error(
    recorder: TenantScopedApplicationRecorder,
) -> None:
    aggregate = uuid.uuid4()
    with acting_for(TENANT):
        recorder.insert_events([_event(aggregate, 1)])
        with pytest.raises(IntegrityError) as refused:
            recorder.insert_events([_event(aggregate, 1)])
    assert type(refused.value) is IntegrityError
