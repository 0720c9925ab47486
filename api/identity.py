"""Wiring of sign-in (part of the composition root): what `commands.sign_in.SignIn` reads and
writes, built from the system's pieces.

- tenants by slug, from the tenants read model (a platform read: the caller has no tenant
  yet), with their sign-in settings; at a refresh they come with the rotation (one round trip);
- the tenant's LDAP integration as a warm `LdapSignIn` (its pool is kept per integration and
  rebuilt when the integration changes, i.e. its version moves);
- role mappings through the system's `RoleMappingCache` (api/role_cache.py);
- sessions in PostgreSQL (`SessionStore`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from api.bootstrap import System
from api.integration_adapters import RECHECK_SECONDS, IntegrationAdapters
from api.role_cache import RoleMappingCache
from commands.sign_in import Directory, SignIn, TenantEntry
from commands.tokens import TokenSigner
from domain.identity import GroupMapping
from domain.integration.aggregate import Integration
from domain.maci import MaciRole
from domain.saml import SamlSignInFacts
from domain.sessions import Session
from domain.tenant.sign_in_settings import SignInSettings
from infra.break_glass import BreakGlassAccounts
from infra.ldap.directory import DirectorySettings
from infra.ldap.sign_in import LdapSignIn
from infra.postgres.database import Database
from infra.postgres.sessions import RevocationList, SessionStore

_TENANT = (
    "SELECT tenant_id, status, default_role, access_token_ttl_seconds, "
    "refresh_token_ttl_seconds FROM tenants WHERE "
)
_TENANT_BY_SLUG = _TENANT + "tenant_slug = %s"
_TENANT_BY_ID = _TENANT + "tenant_id = %s"


class DirectoryRegistry:
    """One warm `LdapSignIn` per LDAP integration (`IntegrationAdapters`). A sign-in that names
    no integration uses the tenant's first enabled LDAP integration by name, looked up again at
    most every `recheck_seconds` as well."""

    def __init__(
        self,
        system: System,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._system = system
        self._adapters: IntegrationAdapters[LdapSignIn] = IntegrationAdapters(
            system,
            ("ldap",),
            self._build,
            close=LdapSignIn.close,
            recheck_seconds=recheck_seconds,
            clock=clock,
        )
        self._first: dict[UUID, tuple[float, UUID | None]] = {}
        self._recheck = recheck_seconds
        self._clock = clock

    def directory(self, tenant_id: UUID, integration_id: UUID | None) -> Directory | None:
        if self._system.breakers is None:  # no integrations in this deployment
            return None
        if integration_id is None:
            integration_id = self._first_ldap(tenant_id)
            if integration_id is None:
                return None
        found = self._adapters.get(tenant_id, integration_id)
        return None if found is None else found[1]

    def _build(self, integration: Integration, config: Mapping[str, Any], _: object) -> LdapSignIn:
        assert self._system.breakers is not None  # checked by `directory`
        settings = DirectorySettings.from_config(dict(config))
        return LdapSignIn(integration.id, settings, self._system.breakers)

    def _first_ldap(self, tenant_id: UUID) -> UUID | None:
        recent = self._first.get(tenant_id)
        if recent is not None and self._clock() - recent[0] < self._recheck:
            return recent[1]
        checked_at = self._clock()
        with (
            psycopg.connect(self._system.app_conninfo, autocommit=True) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant_id)])
            row = conn.execute(
                "SELECT integration_id FROM enterprise_integrations WHERE integration_type = "
                "'ldap' AND enabled AND archived_at IS NULL ORDER BY integration_name LIMIT 1"
            ).fetchone()
        found = None if row is None else UUID(str(row[0]))
        self._first[tenant_id] = (checked_at, found)
        return found

    def close(self) -> None:
        self._adapters.close()


class SystemSignInPorts:
    """`commands.sign_in.SignInPorts` on the system's database, integrations and sessions."""

    def __init__(
        self,
        database: Database,
        directories: DirectoryRegistry,
        roles: RoleMappingCache,
        sessions: SessionStore,
        revocations: RevocationList,
    ) -> None:
        self._db = database
        self.directories = directories
        self.roles = roles
        self.sessions = sessions
        self.revocations = revocations

    async def tenant_by_slug(self, slug: str) -> TenantEntry | None:
        return await self._tenant(_TENANT_BY_SLUG, slug)

    async def tenant_by_id(self, tenant_id: UUID) -> TenantEntry | None:
        return await self._tenant(_TENANT_BY_ID, tenant_id)

    async def _tenant(self, query: str, value: object) -> TenantEntry | None:
        [rows] = await self._db.fetch_sets(None, [(query, [value])])  # one round trip
        if not rows:
            return None
        row = rows[0]
        return _entry(row["tenant_id"], row["status"], SignInSettings.from_dict(row))

    def directory(self, tenant_id: UUID, integration_id: UUID | None) -> Directory | None:
        return self.directories.directory(tenant_id, integration_id)

    async def mappings(
        self, tenant_id: UUID, integration_id: UUID, source_type: str = "ldap_group"
    ) -> list[GroupMapping]:
        return await self.roles.mappings(tenant_id, integration_id, source_type)

    async def open_session(
        self,
        entry: TenantEntry,
        sub: str,
        integration_id: UUID | None,
        dn: str | None,
        roles: tuple[MaciRole, ...],
        auth_method: str = "ldap",
        *,
        saml: SamlSignInFacts | None = None,
    ) -> tuple[Session, str]:
        return await self.sessions.open(
            tenant_id=entry.tenant_id,
            sub=sub,
            auth_method=auth_method,
            integration_id=integration_id,
            user_dn=dn,
            roles=roles,
            refresh_ttl_seconds=entry.refresh_ttl_seconds,
            saml=saml,
            flushed_later=True,  # SignIn audits every session it opens before it answers
        )

    async def rotate(self, refresh_token: str) -> tuple[Session, str, TenantEntry | None]:
        rotated = await self.sessions.rotate(refresh_token, access_keep_seconds=_ACCESS_KEEP)
        session = rotated.session
        tenant = None
        if rotated.tenant_status is not None:
            tenant = _entry(session.tenant_id, rotated.tenant_status, rotated.sign_in)
        return session, rotated.refresh_token, tenant

    async def set_roles(self, session: Session, roles: tuple[MaciRole, ...]) -> Session:
        return await self.sessions.set_roles(session, roles)

    async def revoke(self, tenant_id: UUID, sid: str, reason: str) -> bool:
        ended = await self.sessions.revoke(tenant_id, sid, reason, access_keep_seconds=_ACCESS_KEEP)
        if ended:  # a token without a session (issued by the CLI) is not revoked by logout
            keep_until = datetime.now(UTC) + timedelta(seconds=_ACCESS_KEEP)
            self.revocations.revoked_here("sid", sid, keep_until)
        return ended


_ACCESS_KEEP = 3600  # a revoked session stays in the feed longer than its access tokens live


def _entry(tenant_id: UUID, status: str, settings: SignInSettings) -> TenantEntry:
    return TenantEntry(
        tenant_id=tenant_id,
        active=status == "active",
        default_role=settings.default_role,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
    )


def build_sign_in(
    system: System,
    database: Database,
    signer: TokenSigner,
    revocations: RevocationList,
    directories: DirectoryRegistry,
) -> SignIn:
    """The sign-in service; `directories` is the caller's to close."""
    roles = system.role_cache or RoleMappingCache(database)
    ports = SystemSignInPorts(database, directories, roles, SessionStore(database), revocations)
    path = system.settings.break_glass_file
    accounts = BreakGlassAccounts.from_file(path) if path is not None else None
    return SignIn(
        system.app, system.settings.constitutional_hash, signer, ports, break_glass=accounts
    )
