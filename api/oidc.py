"""Wiring of OpenID Connect / OAuth sign-in (part of the composition root): the relying party of
each OIDC or OAuth integration (built from its configuration, kept while the integration's
version stays the same, so its discovery document and JWKS stay cached), the one-time sign-in
requests, and the sealed store of the providers' refresh tokens.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from uuid import UUID

from api.bootstrap import System
from commands.oidc_sign_in import OidcSignIn
from commands.sign_in import SignIn
from domain.errors import NotFound
from infra.oidc.relying_party import RelyingParty, RelyingPartySettings
from infra.postgres.database import Database
from infra.postgres.sign_in_requests import SignInRequestStore
from infra.postgres.upstream_tokens import UpstreamTokenStore

KINDS = ("oidc", "oauth")
RECHECK_SECONDS = 5.0


class RelyingPartyRegistry:
    """`commands.oidc_sign_in.RelyingParties` on the system's integrations. Whether an
    integration is still enabled (and its version) is looked up again at most every
    `recheck_seconds` (5 s): a changed or disabled integration is in use within that time."""

    def __init__(
        self,
        system: System,
        database: Database,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._system = system
        self._db = database
        self._lock = threading.Lock()
        self._parties: dict[UUID, tuple[int, str, RelyingParty]] = {}
        self._recent: dict[tuple[UUID, UUID], tuple[float, tuple[str, RelyingParty] | None]] = {}
        self._recheck = recheck_seconds
        self._clock = clock

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
        recent = self._recent.get((tenant_id, integration_id))
        if recent is not None and self._clock() - recent[0] < self._recheck:
            found = recent[1]
        else:
            found = await asyncio.to_thread(self._checked, tenant_id, integration_id)
        return None if found is None else found[1]

    def key_of(self, tenant_id: UUID, integration_id: UUID) -> str | None:
        """The integration's data key id (it seals the providers' tokens of its sessions)."""
        recent = self._recent.get((tenant_id, integration_id))
        if recent is not None and self._clock() - recent[0] < self._recheck:
            found = recent[1]
        else:
            found = self._checked(tenant_id, integration_id)
        return None if found is None else found[0]

    def _checked(self, tenant_id: UUID, integration_id: UUID) -> tuple[str, RelyingParty] | None:
        checked_at = self._clock()
        found = self._load(tenant_id, integration_id)
        self._recent[(tenant_id, integration_id)] = (checked_at, found)
        return found

    def _load(self, tenant_id: UUID, integration_id: UUID) -> tuple[str, RelyingParty] | None:
        commands = self._system.integrations
        if commands is None:
            return None
        try:
            integration = commands.load(tenant_id, integration_id)
        except NotFound:
            return None
        kind = integration.integration_type.value
        if kind not in KINDS or not integration.enabled:
            return None
        with self._lock:
            cached = self._parties.get(integration.id)
            if cached is not None and cached[0] == integration.version:
                return cached[1], cached[2]
        settings = RelyingPartySettings.from_config(
            integration.id, kind, integration.clear_config(commands.sealer)
        )
        party = RelyingParty(settings)
        with self._lock:
            self._parties[integration.id] = (integration.version, integration.config_key_id, party)
        return integration.config_key_id, party


def build_oidc_sign_in(system: System, database: Database, sign_in: SignIn) -> OidcSignIn:
    parties = RelyingPartyRegistry(system, database)
    assert system.sealer is not None
    upstream = UpstreamTokenStore(database, system.sealer, parties.key_of)
    oidc = OidcSignIn(sign_in, SignInRequestStore(database), parties, upstream)
    sign_in.upstream = oidc
    return oidc
