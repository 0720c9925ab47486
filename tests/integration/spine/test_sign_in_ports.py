"""Sign-in's ports on the real database: a deployment without integrations has no directory,
a tenant without an LDAP integration has none either (looked up again only after the recheck
interval), and a rotation of a session whose tenant is gone brings no tenant."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast
from uuid import uuid4

import pytest

from api.bootstrap import System
from api.identity import DirectoryRegistry, SystemSignInPorts
from api.role_cache import RoleMappingCache
from domain.maci import MaciRole
from infra.postgres.database import Database
from infra.postgres.sessions import RevocationList, SessionStore

pytestmark = pytest.mark.postgres


def test_a_deployment_without_integrations_has_no_directory() -> None:
    bare = cast("System", SimpleNamespace(breakers=None, integrations=None))
    registry = DirectoryRegistry(bare)
    assert registry.directory(uuid4(), None) is None
    assert registry.directory(uuid4(), uuid4()) is None


def test_a_tenant_without_an_ldap_integration_has_no_directory(system: System) -> None:
    assert system.breakers is not None
    now = [0.0]
    registry = DirectoryRegistry(system, recheck_seconds=60, clock=lambda: now[0])
    tenant_id = uuid4()
    assert registry.directory(tenant_id, None) is None
    assert registry._first[tenant_id] == (0.0, None)  # the answer is kept ...
    now[0] = 30.0
    assert registry.directory(tenant_id, None) is None
    assert registry._first[tenant_id] == (0.0, None)  # ... and not looked up again
    now[0] = 61.0
    assert registry.directory(tenant_id, None) is None
    assert registry._first[tenant_id] == (61.0, None)  # past the interval: looked up again


async def test_a_rotation_of_a_session_whose_tenant_is_gone_brings_no_tenant(
    database: Database, system: System
) -> None:
    sessions = SessionStore(database)
    ports = SystemSignInPorts(
        database, DirectoryRegistry(system), RoleMappingCache(database), sessions,
        RevocationList(database),
    )  # fmt: skip
    tenant_id = uuid4()  # no such tenant in the read model
    session, token = await sessions.open(
        tenant_id=tenant_id, sub="bob", auth_method="ldap", integration_id=None, user_dn=None,
        roles=(MaciRole.MONITOR,), refresh_ttl_seconds=3600,
    )  # fmt: skip
    rotated, new_token, tenant = await ports.rotate(token)
    assert (rotated.sid, tenant) == (session.sid, None)
    assert new_token != token
