"""Wiring of SAML sign-in (part of the composition root): what `commands.saml_sign_in.SamlSignIn`
reads and writes, built from the system's pieces.

- the tenant of an integration, and the SAML integrations an unsolicited response may be for
  (platform reads of the integrations read model: the caller has no tenant yet);
- one warm `ServiceProvider` per (integration, version, base URL) (`IntegrationAdapters`:
  rebuilt when the integration changes, looked up again at most every 5 s);
- the SAML session index in PostgreSQL (read by single logout; written, with the replay cache,
  by the session store in the transaction that opens the session); the screening of responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from api.bootstrap import System
from api.integration_adapters import IntegrationAdapters
from commands.saml_sign_in import SamlProvider, SamlSignIn
from commands.sign_in import SignIn
from domain.integration.aggregate import Integration
from domain.saml import SamlRejected, SamlSessionRef, Screened
from infra.postgres.database import Database
from infra.postgres.saml import SamlSessionIndex
from infra.postgres.sign_in_requests import SignInRequestStore
from infra.saml.screening import screen
from infra.saml.service_provider import ServiceProvider, SpUrls

SAML_PREFIX = "/v1/auth/saml"


def sp_urls(base_url: str, integration_id: UUID, entity_id: str) -> SpUrls:
    base = base_url.rstrip("/")
    return SpUrls(
        entity_id=entity_id,
        acs=f"{base}{SAML_PREFIX}/acs",
        slo=f"{base}{SAML_PREFIX}/{integration_id}/slo",
    )


def service_providers(system: System) -> IntegrationAdapters[ServiceProvider]:
    """One `ServiceProvider` per SAML integration and base URL (`IntegrationAdapters`)."""

    def build(integration: Integration, config: Mapping[str, Any], base_url: object) -> Any:
        urls = sp_urls(str(base_url), integration.id, str(config["sp_entity_id"]))
        try:
            return ServiceProvider(integration.id, dict(config), urls)
        except SamlRejected:
            return None

    return IntegrationAdapters(system, ("saml",), build)


class SystemSamlPorts:
    """`commands.saml_sign_in.SamlPorts` on the system's database and integrations."""

    def __init__(self, database: Database, providers: IntegrationAdapters[ServiceProvider]) -> None:
        self._db = database
        self._providers = providers
        self._sessions = SamlSessionIndex(database)

    async def tenant_of(self, integration_id: UUID) -> UUID | None:
        async with self._db.platform_session() as conn:
            cur = await conn.execute(
                "SELECT tenant_id FROM enterprise_integrations WHERE integration_id = %s "
                "AND integration_type = 'saml' AND archived_at IS NULL",
                [integration_id],
            )
            row = await cur.fetchone()
        return None if row is None else UUID(str(row["tenant_id"]))

    def provider(self, tenant_id: UUID, integration_id: UUID, base_url: str) -> SamlProvider | None:
        found = self._providers.get(tenant_id, integration_id, base_url)
        return None if found is None else found[1]

    async def unsolicited(self, audiences: tuple[str, ...]) -> list[tuple[UUID, UUID]]:
        if not audiences:
            return []
        async with self._db.platform_session() as conn:
            cur = await conn.execute(
                "SELECT tenant_id, integration_id FROM enterprise_integrations "
                "WHERE integration_type = 'saml' AND enabled AND archived_at IS NULL "
                "AND (config_encrypted::jsonb ->> 'sp_entity_id') = ANY(%s) LIMIT 2",
                [list(audiences)],
            )
            rows = await cur.fetchall()
        return [(UUID(str(r["tenant_id"])), UUID(str(r["integration_id"]))) for r in rows]

    def screen(self, message: str) -> Screened:
        return screen(message)

    async def session_ref(self, tenant_id: UUID, sid: str) -> SamlSessionRef | None:
        return await self._sessions.of_session(tenant_id, sid)

    async def live_sessions(
        self, tenant_id: UUID, integration_id: UUID, name_id: str, session_indexes: list[str]
    ) -> list[str]:
        return await self._sessions.live_sessions(
            tenant_id, integration_id, name_id, session_indexes
        )


def build_saml(system: System, database: Database, sign_in: SignIn) -> SamlSignIn:
    ports = SystemSamlPorts(database, service_providers(system))
    return SamlSignIn(sign_in, SignInRequestStore(database), ports)
