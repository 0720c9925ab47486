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

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg

from api.bootstrap import System
from api.role_cache import RoleMappingCache
from commands.sign_in import Directory, SignIn, TenantEntry
from commands.tokens import TokenSigner
from domain.errors import NotFound
from domain.identity import GroupMapping
from domain.maci import MaciRole
from domain.saml import SamlSignInFacts
from domain.sessions import Session
from domain.tenant.sign_in_settings import SignInSettings
from infra.break_glass import BreakGlassAccounts
from infra.ldap.directory import DirectorySettings
from infra.ldap.sign_in import LdapSignIn
from infra.postgres.database import Database
from infra.postgres.sessions import RevocationList, SessionStore

RECHECK_SECONDS = 5.0
_TENANT = (
    "SELECT tenant_id, status, default_role, access_token_ttl_seconds, "
    "refresh_token_ttl_seconds FROM tenants WHERE "
)
_TENANT_BY_SLUG = _TENANT + "tenant_slug = %s"
_TENANT_BY_ID = _TENANT + "tenant_id = %s"


class DirectoryRegistry:
    """One warm `LdapSignIn` per LDAP integration, rebuilt when the integration changes. Which
    integration a sign-in uses (and whether it is still enabled, and its version) is looked up
    again at most every `recheck_seconds` (5 s): a changed or disabled integration is in use
    within that time."""

    def __init__(
        self,
        system: System,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._system = system
        self._lock = threading.Lock()
        self._directories: dict[UUID, tuple[int, LdapSignIn]] = {}
        self._recent: dict[tuple[UUID, UUID | None], tuple[float, Directory | None]] = {}
        self._recheck = recheck_seconds
        self._clock = clock

    def directory(self, tenant_id: UUID, integration_id: UUID | None) -> Directory | None:
        key = (tenant_id, integration_id)
        recent = self._recent.get(key)
        if recent is not None and self._clock() - recent[0] < self._recheck:
            return recent[1]
        checked_at = self._clock()
        found = self._lookup(tenant_id, integration_id)
        self._recent[key] = (checked_at, found)
        return found

    def _lookup(self, tenant_id: UUID, integration_id: UUID | None) -> Directory | None:
        commands = self._system.integrations
        if commands is None or self._system.breakers is None:
            return None
        if integration_id is None:
            integration_id = self._first_ldap(tenant_id)
            if integration_id is None:
                return None
        try:
            integration = commands.load(tenant_id, integration_id)
        except NotFound:
            return None
        if integration.integration_type.value != "ldap" or not integration.enabled:
            return None
        with self._lock:
            cached = self._directories.get(integration.id)
            if cached is not None and cached[0] == integration.version:
                return cached[1]
            settings = DirectorySettings.from_config(integration.clear_config(commands.sealer))
            built = LdapSignIn(integration.id, settings, self._system.breakers)
            self._directories[integration.id] = (integration.version, built)
        if cached is not None:
            cached[1].close()
        return built

    def _first_ldap(self, tenant_id: UUID) -> UUID | None:
        with (
            psycopg.connect(self._system.app_conninfo, autocommit=True) as conn,
            conn.transaction(),
        ):
            conn.execute("SELECT set_config('app.current_tenant_id', %s, true)", [str(tenant_id)])
            row = conn.execute(
                "SELECT integration_id FROM enterprise_integrations WHERE integration_type = "
                "'ldap' AND enabled AND archived_at IS NULL ORDER BY integration_name LIMIT 1"
            ).fetchone()
        return None if row is None else UUID(str(row[0]))

    def close(self) -> None:
        with self._lock:
            for _, directory in self._directories.values():
                directory.close()
            self._directories.clear()


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
    system: System, database: Database, signer: TokenSigner, revocations: RevocationList
) -> SignIn:
    roles = system.role_cache or RoleMappingCache(database)
    ports = SystemSignInPorts(
        database, DirectoryRegistry(system), roles, SessionStore(database), revocations
    )
    path = system.settings.break_glass_file
    accounts = BreakGlassAccounts.from_file(path) if path is not None else None
    return SignIn(
        system.app, system.settings.constitutional_hash, signer, ports, break_glass=accounts
    )
