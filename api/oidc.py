"""Wiring of OpenID Connect / OAuth sign-in (part of the composition root): the relying party of
each OIDC or OAuth integration (built from its configuration, kept while the integration's
version stays the same, so its discovery document and JWKS stay cached), the one-time sign-in
requests, and the sealed store of the providers' refresh tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from api.bootstrap import System
from api.integration_adapters import IntegrationAdapters
from commands.oidc_sign_in import OidcSignIn
from commands.sign_in import SignIn
from domain.integration.aggregate import Integration
from infra.oidc.relying_party import RelyingParty, RelyingPartySettings
from infra.postgres.database import Database
from infra.postgres.sign_in_requests import SignInRequestStore
from infra.postgres.upstream_tokens import UpstreamTokenStore

KINDS = ("oidc", "oauth")


class RelyingPartyRegistry:
    """`commands.oidc_sign_in.RelyingParties` on the system's integrations: one `RelyingParty`
    per OIDC or OAuth integration (`IntegrationAdapters`)."""

    def __init__(self, system: System, database: Database) -> None:
        self._db = database
        self._adapters: IntegrationAdapters[RelyingParty] = IntegrationAdapters(
            system, KINDS, _relying_party
        )

    async def find(self, integration_id: UUID) -> tuple[UUID, RelyingParty] | None:
        async with self._db.platform_session() as conn:
            cur = await conn.execute(
                "SELECT tenant_id FROM enterprise_integrations WHERE integration_id = %s "
                "AND integration_type IN ('oidc', 'oauth') AND enabled AND archived_at IS NULL",
                [integration_id],
            )
            row = await cur.fetchone()
        if row is None:
            return None
        party = await self.of_tenant(row["tenant_id"], integration_id)
        return None if party is None else (row["tenant_id"], party)

    async def of_tenant(self, tenant_id: UUID, integration_id: UUID) -> RelyingParty | None:
        found = await asyncio.to_thread(self._adapters.get, tenant_id, integration_id)
        return None if found is None else found[1]

    def key_of(self, tenant_id: UUID, integration_id: UUID) -> str | None:
        """The integration's data key id (it seals the providers' tokens of its sessions)."""
        found = self._adapters.get(tenant_id, integration_id)
        return None if found is None else found[0].config_key_id


def _relying_party(integration: Integration, config: Mapping[str, Any], _: object) -> RelyingParty:
    kind = integration.integration_type.value
    return RelyingParty(RelyingPartySettings.from_config(integration.id, kind, dict(config)))


def build_oidc_sign_in(system: System, database: Database, sign_in: SignIn) -> OidcSignIn:
    parties = RelyingPartyRegistry(system, database)
    assert system.sealer is not None
    upstream = UpstreamTokenStore(database, system.sealer, parties.key_of)
    oidc = OidcSignIn(sign_in, SignInRequestStore(database), parties, upstream)
    sign_in.upstream = oidc
    return oidc
