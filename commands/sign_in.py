"""Sign-in with a directory password, and the sessions it starts: refresh, logout, who am I.

Login (`login`): throttle check, the tenant by slug, its LDAP integration, the directory checks
the password and returns the user and groups, the role mappings turn groups into MACI roles, a
session is opened and an access token signed (claims: sub, tenant_id, maci_roles, maci_role,
constitutional_hash, auth_method, sid, iat, nbf, exp, jti, iss, aud; `exp - iat` is the
tenant's access token lifetime). Every failure that could tell an attacker something (unknown
tenant, unknown user, wrong password, disabled account) is the same `InvalidCredentials`,
answered no sooner than `failure_floor_seconds` after the request began, so neither the answer
nor its timing tells which part failed. A right password of a user no role mapping matches, in
a tenant whose default role is `none`, is `NoRoleMapped` (403; told only after the password was
checked). A directory that cannot be reached is `DependencyUnavailable`. Every attempt is
audited (category `authentication`; user name, IP, user agent, result; never the password).

Refresh (`refresh`): the refresh token is rotated (the tenant's status and sign-in settings come
with the rotation); the user's groups are read again from the directory and the roles resolved
again, so a user removed from the directory, or from every mapped group (with the tenant's
default role `none`), loses access at the next refresh. The directory read starts together
with the rotation when this process issued the refresh token (it remembers, by the token's
digest, whose token it is: tenant, integration, DN, and what the access token issued with it
said; a session's DN never changes), so the two round trips overlap, and the new access token
is signed while both are under way, with the roles and lifetime the last one had: it is handed
out only when the directory's answer and the rotation give the very same claims, within the
second it was signed (else it is dropped and the token signed again). A token issued
elsewhere is rotated first and read after. A reused refresh token revokes its whole session
(audited). Logout (`logout`) revokes the session: its refresh tokens at once, its access
tokens wherever `RevocationCheck` runs (every API process) within a second.

Federated sign-in (`federated`): a SAML IdP or an OpenID/OAuth provider has vouched for the user
(its adapter checked the signature, audience, expiry, replay ...) and hands over a
`FederatedIdentity`: the stable external subject, the profile, and the attribute, claim or scope
values. Those values go through the integration's role mappings of the matching source type
(`saml_attribute`, `oidc_claim`, `oauth_scope`); the session lasts `session_seconds` (SAML: 8 h by
default); the tokens carry `auth_method` saml/oidc/oauth. Refusals are `AssertionRejected` (the
answer itself was not accepted) or `SignInRefused` (no role, tenant not active), each audited
with its reason. `SignInRequests` is the port of the one-time server-side records that bind an
identity provider's answer to the request the service sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands.application import GovernanceApplication
from commands.tokens import AUDIENCE, ISSUER, TokenSigner
from domain.audit import AuditEntry
from domain.errors import DependencyUnavailable, DomainError, NotFound
from domain.events import Actor, EventMeta
from domain.identity import (
    DirectoryUser,
    GroupMapping,
    InvalidCredentials,
    NoRoleMapped,
    ResolvedRoles,
    normalise_dn,
    resolve_roles,
)
from domain.maci import MaciRole
from domain.provider_identity import ProviderRefused
from domain.saml import SamlRejected, SamlSignInFacts
from domain.sessions import (
    ACCESS_TTL_SECONDS,
    REFRESH_TTL_SECONDS,
    PendingSignIn,
    RefreshRejected,
    RefreshReused,
    Session,
)
from domain.tenancy import SYSTEM_TENANT_ID

FAILURE_FLOOR_SECONDS = 0.25
MAX_THROTTLED_KEYS = 100_000
MAX_REMEMBERED_TOKENS = 100_000
log = logging.getLogger("acgs.auth")


class RateLimitedSignIn(DomainError):
    """Too many failed sign-ins for this account or address; `retry_after` in seconds."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many failed sign-in attempts; try again later", {"retry_after": retry_after}
        )
        self.retry_after = retry_after


class Directory(Protocol):
    """One directory integration, ready to check passwords (see infra.ldap.sign_in)."""

    integration_id: UUID

    def authenticate(self, username: str, password: str) -> DirectoryUser: ...

    def lookup(self, dn: str) -> DirectoryUser | None: ...


@dataclass(frozen=True)
class TenantEntry:
    tenant_id: UUID
    active: bool
    default_role: MaciRole | None = MaciRole.MONITOR
    access_ttl_seconds: int = ACCESS_TTL_SECONDS
    refresh_ttl_seconds: int = REFRESH_TTL_SECONDS


class BreakGlass(Protocol):
    """Local accounts allowed in only while the directory cannot be reached."""

    def verify(
        self, tenant_slug: str, username: str, password: str
    ) -> tuple[MaciRole, ...] | None: ...


class SignInPorts(Protocol):
    """What sign-in reads and writes outside itself (the composition root provides them)."""

    async def tenant_by_slug(self, slug: str) -> TenantEntry | None: ...

    async def tenant_by_id(self, tenant_id: UUID) -> TenantEntry | None: ...

    def directory(self, tenant_id: UUID, integration_id: UUID | None) -> Directory | None:
        """The tenant's enabled LDAP integration (this one, or the first by name)."""
        ...

    async def mappings(
        self, tenant_id: UUID, integration_id: UUID, source_type: str = "ldap_group"
    ) -> list[GroupMapping]:
        """The integration's role mappings of one source type (LDAP groups by default)."""
        ...

    async def open_session(
        self, entry: TenantEntry, sub: str, integration_id: UUID | None, dn: str | None,
        roles: tuple[MaciRole, ...], auth_method: str = "ldap",
        *, saml: SamlSignInFacts | None = None,
    ) -> tuple[Session, str]:  # fmt: skip
        """A new session and its first refresh token; with `saml`, the assertion's replay-cache
        entry and the session index in the same transaction (`SamlRejected("replay")`, and no
        session, when the assertion was used before). `SignIn` saves an audit entry (a
        synchronous commit) after every session it opens and before it answers: the session's
        own commit need not wait for its flush to disk."""
        ...

    async def rotate(self, refresh_token: str) -> tuple[Session, str, TenantEntry | None]:
        """The session, its new refresh token and its tenant now (None: gone); raises
        `RefreshReused` (session revoked) or `RefreshRejected`."""
        ...

    async def set_roles(self, session: Session, roles: tuple[MaciRole, ...]) -> Session: ...

    async def revoke(self, tenant_id: UUID, sid: str, reason: str) -> bool: ...


class Throttle:
    """Failed attempts per key in a sliding window: `limit` failures within `window` seconds
    lock the key until the oldest failure leaves the window. In-process."""

    def __init__(
        self,
        limit: int = 5,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, list[float]] = {}

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again (0: now)."""
        recent = self._recent(key)
        if len(recent) < self.limit:
            return 0
        return max(1, int(recent[-self.limit] + self.window - self._clock()) + 1)

    def failed(self, key: str) -> None:
        if len(self._failures) >= MAX_THROTTLED_KEYS:  # bounded memory: forget quiet keys
            cutoff = self._clock() - self.window
            for quiet in [k for k, times in self._failures.items() if times[-1] <= cutoff]:
                del self._failures[quiet]
        recent = self._recent(key)
        recent.append(self._clock())
        self._failures[key] = recent

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> list[float]:
        cutoff = self._clock() - self.window
        recent = [t for t in self._failures.get(key, []) if t > cutoff]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent


@dataclass(frozen=True)
class Attempt:
    tenant_slug: str
    username: str
    password: str
    integration_id: UUID | None
    ip: str
    user_agent: str

    def __repr__(self) -> str:  # never the password
        return f"Attempt({self.tenant_slug!r}, {self.username!r}, ip={self.ip!r})"


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int
    roles: tuple[MaciRole, ...]
    session: Session


@dataclass(frozen=True)
class _Facts:
    """What an access token says of its session (all but its times and id), and where the
    session's user is in the directory (LDAP sessions only)."""

    tenant_id: UUID
    sub: str
    sid: str
    auth_method: str
    roles: tuple[MaciRole, ...]
    access_ttl_seconds: int
    integration_id: UUID | None
    dn: str | None

    @classmethod
    def of(cls, session: Session, access_ttl_seconds: int) -> _Facts:
        return cls(
            session.tenant_id,
            session.sub,
            session.sid,
            session.auth_method,
            session.roles,
            access_ttl_seconds,
            session.integration_id,
            session.user_dn,
        )


@dataclass(frozen=True)
class _Signed:
    token: str
    facts: _Facts
    issued_at: int  # its iat (and nbf; exp is iat + the lifetime in `facts`)


# --- federated sign-in: an identity asserted by a SAML IdP or an OpenID/OAuth provider ---------

FEDERATED_SOURCE_TYPES = {"saml": "saml_attribute", "oidc": "oidc_claim", "oauth": "oauth_scope"}
SAML_SESSION_SECONDS = 8 * 3600
MAX_SUBJECT = 255


class AssertionRejected(DomainError):
    """The identity provider's answer was not accepted (bad signature, expired, replayed, not
    for us ...). One message to the caller; the reason goes to the audit log only."""

    code = "INVALID_ASSERTION"

    def __init__(self, reason: str) -> None:
        super().__init__("the identity provider's answer was not accepted")
        self.reason = reason


class SignInRefused(DomainError):
    """The identity provider vouched for the user, but this service lets them in with no role
    (no mapping matched and the tenant's default role is none) or the tenant is not active."""

    code = "SIGN_IN_REFUSED"

    def __init__(self, reason: str) -> None:
        super().__init__("this account has no access to the tenant", {"reason": reason})
        self.reason = reason


@dataclass(frozen=True)
class FederatedIdentity:
    """Who an external identity provider says signed in (already verified by its adapter).

    `subject` is the stable external id (a SAML persistent NameID, OIDC `iss` + `sub`); it is
    the session's and the access token's `sub`. `values` are the attribute, claim or scope
    values matched against the integration's role mappings of the method's source type.
    `session_seconds` is the session's lifetime (the tenant's refresh lifetime when None)."""

    tenant_id: UUID
    integration_id: UUID
    auth_method: str  # "saml", "oidc" or "oauth"
    subject: str
    username: str
    email: str | None = None
    name: str | None = None
    values: frozenset[str] = frozenset()
    session_seconds: int | None = None
    ip: str = "unknown"
    user_agent: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)  # protocol facts for the audit
    saml: SamlSignInFacts | None = None  # written with the session (replay cache, SLO index)


class SignInRequests(Protocol):
    """One-time, expiring server-side records of browser sign-ins in flight (see
    infra.postgres.sign_in_requests)."""

    async def create(
        self,
        tenant_id: UUID,
        integration_id: UUID,
        kind: str,
        payload: Mapping[str, Any],
        *,
        ttl_seconds: int = ...,
    ) -> str: ...

    async def consume(
        self, request_id: str, kind: str, *, flushed_later: bool = False
    ) -> PendingSignIn | None:
        """The request, removed; None when unknown, of another kind, used before or expired.
        `flushed_later`: the caller commits synchronously (a session, an audit entry) before
        it answers, whatever happens, which makes this removal durable too; it is then
        committed without waiting for its own flush to disk."""
        ...


class UpstreamSessions(Protocol):
    """The identity provider's side of federated sessions (OpenID Connect, OAuth: see
    commands.oidc_sign_in)."""

    async def refreshed(self, session: Session) -> frozenset[str] | None:
        """The user's role values as the provider gives them now; None when the session holds
        nothing of the provider's (its roles stay). Raises ProviderRefused, or
        DependencyUnavailable when the provider cannot be reached."""
        ...

    async def ended(self, tenant_id: UUID, sid: str) -> bool | None:
        """Revoke the session's tokens at the provider: True when it confirmed, False when it
        did not, None when the session held none."""
        ...


UPSTREAM_METHODS = frozenset({"oidc", "oauth"})


class SignIn:
    upstream: UpstreamSessions | None = None  # set by the composition root

    def __init__(
        self,
        app: GovernanceApplication,
        constitutional_hash: str,
        signer: TokenSigner,
        ports: SignInPorts,
        *,
        account_throttle: Throttle | None = None,
        ip_throttle: Throttle | None = None,
        failure_floor_seconds: float = FAILURE_FLOOR_SECONDS,
        clock: Callable[[], float] = time.time,
        break_glass: BreakGlass | None = None,
    ) -> None:
        self.break_glass = break_glass
        self._app = app
        self._hash = constitutional_hash
        self._signer = signer
        self._ports = ports
        self.account_throttle = account_throttle or Throttle(limit=5)
        self.ip_throttle = ip_throttle or Throttle(limit=50)
        self._floor = failure_floor_seconds
        self._clock = clock
        # digest of a refresh token issued here -> its session, as the access token said
        self._holders: dict[bytes, _Facts] = {}

    # --- login --------------------------------------------------------------------------------

    async def login(self, attempt: Attempt) -> Issued:
        started = time.monotonic()
        account = f"{attempt.tenant_slug.casefold()}/{attempt.username.casefold()}"
        ip_key = f"ip/{attempt.ip}"
        wait = max(self.account_throttle.retry_after(account), self.ip_throttle.retry_after(ip_key))
        tenant = await self._ports.tenant_by_slug(attempt.tenant_slug)
        if wait:
            await self._audit(tenant, attempt, "denied", "rate_limited", {"retry_after": wait})
            raise RateLimitedSignIn(wait)
        try:
            if tenant is None or not tenant.active:
                raise InvalidCredentials
            issued = await self._login(tenant, attempt)
        except InvalidCredentials:
            self.account_throttle.failed(account)
            self.ip_throttle.failed(ip_key)
            await self._audit(tenant, attempt, "failure", "invalid_credentials", {})
            await asyncio.sleep(max(0.0, self._floor - (time.monotonic() - started)))
            raise InvalidCredentials from None
        except NoRoleMapped:
            self.account_throttle.succeeded(account)
            await self._audit(tenant, attempt, "denied", "no_role", {})
            raise
        except DependencyUnavailable:
            await self._audit(tenant, attempt, "failure", "directory_unavailable", {})
            rescued = None if tenant is None else await self._break_glass(tenant, attempt)
            if rescued is None:
                raise
            return rescued
        self.account_throttle.succeeded(account)
        details = {"sid": issued.session.sid, "maci_roles": [r.value for r in issued.roles]}
        await self._audit(tenant, attempt, "success", "signed_in", details)
        return issued

    async def _break_glass(self, tenant: TenantEntry, attempt: Attempt) -> Issued | None:
        """A break-glass account's sign-in (only reached while the directory is unreachable);
        recorded loudly: an audit entry and a warning in the service log."""
        if self.break_glass is None:
            return None
        roles = await asyncio.to_thread(
            self.break_glass.verify, attempt.tenant_slug, attempt.username, attempt.password
        )
        if roles is None:
            return None
        session, refresh_token = await self._ports.open_session(
            tenant, attempt.username, None, None, roles, auth_method="break_glass"
        )
        issued = self._issue(tenant, session, refresh_token)
        details = {
            "sid": session.sid,
            "maci_roles": [r.value for r in roles],
            "warning": "BREAK-GLASS sign-in: the directory is unreachable",
        }
        log.warning(
            "BREAK-GLASS sign-in of %r in tenant %s (the directory is unreachable)",
            attempt.username,
            tenant.tenant_id,
        )
        await self._save(
            tenant.tenant_id,
            "break_glass_login",
            "success",
            "auth/break-glass",
            {**details, "username": attempt.username, "ip": attempt.ip},
            EventMeta(tenant.tenant_id, Actor(attempt.username, roles, "break_glass"), self._hash),
        )
        return issued

    async def _login(self, tenant: TenantEntry, attempt: Attempt) -> Issued:
        def check() -> tuple[UUID, DirectoryUser]:  # one thread hop for both calls
            directory = self._ports.directory(tenant.tenant_id, attempt.integration_id)
            if directory is None:
                raise InvalidCredentials
            return directory.integration_id, directory.authenticate(
                attempt.username, attempt.password
            )

        integration_id, user = await asyncio.to_thread(check)
        roles = await self._roles(tenant, integration_id, user)
        if roles is None:
            raise NoRoleMapped
        session, refresh_token = await self._ports.open_session(
            tenant, user.username, integration_id, user.dn, roles
        )
        return self._issue(tenant, session, refresh_token)

    async def preview_roles(
        self, tenant_id: UUID, integration_id: UUID, auth_method: str, values: Iterable[str]
    ) -> ResolvedRoles | None:
        """The roles a user would get at sign-in through this integration with these values:
        directory groups (DNs, normalised as the directory's are) for `ldap`, the provider's
        attribute, claim or scope values for `saml`, `oidc`, `oauth`. The same mappings (the
        role cache) and the same resolution as `login` and `federated`; None when sign-in
        would be refused (no mapping matched and the tenant's default role is none)."""
        source_type = FEDERATED_SOURCE_TYPES.get(auth_method, "ldap_group")
        if auth_method != "ldap" and auth_method not in FEDERATED_SOURCE_TYPES:
            raise ValueError(f"unknown auth method {auth_method!r}")
        tenant = await self._ports.tenant_by_id(tenant_id)
        if tenant is None:
            raise NotFound("tenant not found", {"tenant_id": str(tenant_id)})
        given = [normalise_dn(v) if auth_method == "ldap" else v for v in values]
        mappings = await self._ports.mappings(tenant_id, integration_id, source_type)
        return resolve_roles(given, mappings, tenant.default_role)

    async def _roles(
        self, tenant: TenantEntry, integration_id: UUID, user: DirectoryUser
    ) -> tuple[MaciRole, ...] | None:
        mappings = await self._ports.mappings(tenant.tenant_id, integration_id)
        resolved = resolve_roles(user.groups, mappings, tenant.default_role)
        return None if resolved is None else resolved.roles

    def _issue(
        self,
        tenant: TenantEntry,
        session: Session,
        refresh_token: str,
        ahead: _Signed | None = None,
    ) -> Issued:
        """The tokens of `session`; `ahead`, an access token signed before the session was
        known, is handed out only when it says exactly what this issue would sign (the same
        facts, signed within the same second)."""
        facts = _Facts.of(session, tenant.access_ttl_seconds)
        if ahead is not None and ahead.facts == facts and ahead.issued_at == int(self._clock()):
            signed = ahead  # the very claims a signature now would carry
        else:
            signed = self._sign(facts)
        if facts.integration_id is not None and facts.dn is not None:
            if len(self._holders) >= MAX_REMEMBERED_TOKENS:  # bounded: forget the oldest
                del self._holders[next(iter(self._holders))]
            self._holders[_digest(refresh_token)] = facts
        return Issued(signed.token, refresh_token, facts.access_ttl_seconds, facts.roles, session)

    def _sign(self, facts: _Facts) -> _Signed:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": facts.sub,
            "tenant_id": str(facts.tenant_id),
            "maci_roles": [r.value for r in facts.roles],
            "maci_role": facts.roles[0].value,
            "constitutional_hash": self._hash,
            "auth_method": facts.auth_method,
            "sid": facts.sid,
            "iat": now,
            "nbf": now,
            "exp": now + facts.access_ttl_seconds,
            "jti": str(uuid4()),
        }
        token, _ = self._signer.sign(claims)
        return _Signed(token, facts, now)

    # --- federated sign-in (SAML, OIDC, OAuth) -------------------------------------------------

    async def federated(self, identity: FederatedIdentity) -> Issued:
        """Complete a sign-in the identity provider vouched for: roles from the integration's
        mappings (the tenant's default role when none match; refused when that is none), a
        session of `session_seconds`, the service's tokens, an audit record."""
        source_type = FEDERATED_SOURCE_TYPES.get(identity.auth_method)
        if source_type is None:
            raise ValueError(f"unknown federated auth method {identity.auth_method!r}")
        if not identity.subject or len(identity.subject) > MAX_SUBJECT:
            await self.federated_refused(identity, "subject_invalid")
            raise AssertionRejected("subject_invalid")
        tenant = await self._ports.tenant_by_id(identity.tenant_id)
        if tenant is None or not tenant.active:
            await self.federated_refused(identity, "tenant_inactive")
            raise SignInRefused("tenant_inactive")
        mappings = await self._ports.mappings(
            tenant.tenant_id, identity.integration_id, source_type
        )
        resolved = resolve_roles(identity.values, mappings, tenant.default_role)
        if resolved is None:
            await self.federated_refused(identity, "no_role")
            raise SignInRefused("no_role")
        if identity.session_seconds is not None:
            tenant = replace(tenant, refresh_ttl_seconds=identity.session_seconds)
        # `saml` is passed only when set: ports of the other protocols need not know it.
        facts = {} if identity.saml is None else {"saml": identity.saml}
        try:
            session, refresh_token = await self._ports.open_session(
                tenant,
                identity.subject,
                identity.integration_id,
                None,
                resolved.roles,
                auth_method=identity.auth_method,
                **facts,
            )
        except SamlRejected as rejected:  # the assertion was used before: no session
            await self.federated_refused(identity, rejected.reason, {"detail": rejected.detail})
            raise AssertionRejected(rejected.reason) from None
        issued = self._issue(tenant, session, refresh_token)
        details = {"sid": session.sid, "maci_roles": [r.value for r in resolved.roles]}
        await self._audit_federated(identity, "success", "signed_in", details)
        return issued

    async def federated_refused(
        self, identity: FederatedIdentity, reason: str, extra: Mapping[str, Any] | None = None
    ) -> None:
        """Audit a refused federated sign-in (`identity` holds what is known so far)."""
        await self._audit_federated(identity, "denied", reason, extra or {})

    async def _audit_federated(
        self, identity: FederatedIdentity, result: str, outcome: str, extra: Mapping[str, Any]
    ) -> None:
        method = identity.auth_method
        who = (identity.username or identity.subject or "unknown")[:255]
        meta = EventMeta(identity.tenant_id, Actor(who, auth_method=method), self._hash)
        details = {
            "subject": identity.subject[:MAX_SUBJECT],
            "username": identity.username[:255],
            "email": identity.email,
            "integration_id": str(identity.integration_id),
            "outcome": outcome,
            "ip": identity.ip,
            "user_agent": identity.user_agent[:500],
            **identity.details,
            **extra,
        }
        await self._save(identity.tenant_id, f"{method}_login", result, f"auth/{method}", details,
                         meta)  # fmt: skip

    # --- sessions -----------------------------------------------------------------------------

    async def refresh(self, refresh_token: str, *, ip: str, user_agent: str) -> Issued:
        holder = self._holders.pop(_digest(refresh_token), None)
        early: asyncio.Future[tuple[UUID, DirectoryUser] | None] | None = None
        ahead: _Signed | None = None
        # the rotation first: its query goes out before the directory's thread takes the GIL
        rotation = asyncio.ensure_future(self._ports.rotate(refresh_token))
        if holder is not None and holder.integration_id is not None and holder.dn is not None:
            read = self._read(holder.tenant_id, holder.integration_id, holder.dn)
            early = asyncio.ensure_future(read)
        try:
            if holder is not None:
                await asyncio.sleep(0)  # both requests go out before the signature holds us
                ahead = self._sign(holder)  # checked against the outcome by `_issue`
            session, new_token, tenant = await rotation
        except RefreshReused as reused:
            _drop(early)
            await self._audit_session(
                reused.session, "refresh_token_reused", "denied", ip, user_agent
            )
            raise RefreshRejected from None
        except BaseException:
            _drop(early)
            _drop(rotation)
            raise
        if holder is None or (holder.tenant_id, holder.integration_id, holder.dn) != (
            session.tenant_id, session.integration_id, session.user_dn
        ):  # fmt: skip
            _drop(early)  # not the session remembered here: read after the rotation
            early = None
        if tenant is None or not tenant.active:
            _drop(early)
            await self._ports.revoke(session.tenant_id, session.sid, "tenant_inactive")
            raise RefreshRejected
        roles = session.roles
        if session.integration_id is not None and session.user_dn is not None:
            roles = await self._directory_roles(tenant, session, early, ip, user_agent)
        if self.upstream is not None and session.auth_method in UPSTREAM_METHODS:
            roles = await self._upstream_roles(tenant, session, ip, user_agent)
        if roles != session.roles:
            session = await self._ports.set_roles(session, roles)
            await self._audit_session(session, "refresh_roles_changed", "success", ip, user_agent)
        return self._issue(tenant, session, new_token, ahead)

    async def _directory_roles(
        self,
        tenant: TenantEntry,
        session: Session,
        early: asyncio.Future[tuple[UUID, DirectoryUser] | None] | None,
        ip: str,
        user_agent: str,
    ) -> tuple[MaciRole, ...]:
        """The roles of an LDAP session from what the directory says now (`early`: the read
        already under way); the session is revoked when the user has none any more."""
        assert session.integration_id is not None
        assert session.user_dn is not None
        try:
            if early is None:
                early = asyncio.ensure_future(
                    self._read(session.tenant_id, session.integration_id, session.user_dn)
                )
            resolved = await self._reresolve(tenant, await early)
        except DependencyUnavailable:
            # The directory is down: the session keeps the roles it has (audited).
            await self._audit_session(
                session, "refresh_directory_unavailable", "success", ip, user_agent
            )
            return session.roles
        if resolved is None:
            await self._ports.revoke(session.tenant_id, session.sid, "access_removed")
            await self._audit_session(session, "refresh_access_removed", "denied", ip, user_agent)
            raise RefreshRejected
        return resolved

    async def logout(
        self, tenant_id: UUID, sid: str, sub: str, *, ip: str, user_agent: str,
        auth_method: str = "ldap",
    ) -> bool:  # fmt: skip
        ended = await self._ports.revoke(tenant_id, sid, "logout")
        meta = EventMeta(tenant_id, Actor(sub, auth_method=auth_method), self._hash)
        details: dict[str, Any] = {"sid": sid, "ended": ended, "ip": ip, "user_agent": user_agent}
        if self.upstream is not None:
            revoked = await self.upstream.ended(tenant_id, sid)
            if revoked is not None:
                details["provider_revoked"] = revoked
        await self._save(tenant_id, "logout", "success", f"session/{sid}", details, meta)
        return ended

    async def _upstream_roles(
        self, tenant: TenantEntry, session: Session, ip: str, user_agent: str
    ) -> tuple[MaciRole, ...]:
        """The roles of a federated session at refresh, from what its provider says now."""
        assert self.upstream is not None
        try:
            values = await self.upstream.refreshed(session)
        except DependencyUnavailable:
            # The provider is down: the session keeps the roles it has (audited).
            await self._audit_session(
                session, "refresh_provider_unavailable", "success", ip, user_agent
            )
            return session.roles
        except ProviderRefused as refused:
            await self._ports.revoke(session.tenant_id, session.sid, "access_removed")
            await self._audit_session(
                session, "refresh_access_removed", "denied", ip, user_agent,
                {"reason": refused.reason},
            )  # fmt: skip
            raise RefreshRejected from None
        if values is None or session.integration_id is None:
            return session.roles
        source_type = FEDERATED_SOURCE_TYPES[session.auth_method]
        mappings = await self._ports.mappings(tenant.tenant_id, session.integration_id, source_type)
        resolved = resolve_roles(values, mappings, tenant.default_role)
        if resolved is None:
            await self._ports.revoke(session.tenant_id, session.sid, "access_removed")
            await self._audit_session(session, "refresh_access_removed", "denied", ip, user_agent)
            raise RefreshRejected
        return resolved.roles

    async def _read(
        self, tenant_id: UUID, integration_id: UUID, dn: str
    ) -> tuple[UUID, DirectoryUser] | None:
        """The user at `dn` as the directory sees it now; None when the user or the integration
        is gone."""

        def read() -> tuple[UUID, DirectoryUser] | None:  # one thread hop for both calls
            directory = self._ports.directory(tenant_id, integration_id)
            user = None if directory is None else directory.lookup(dn)
            return None if directory is None or user is None else (directory.integration_id, user)

        return await asyncio.to_thread(read)

    async def _reresolve(
        self, tenant: TenantEntry, found: tuple[UUID, DirectoryUser] | None
    ) -> tuple[MaciRole, ...] | None:
        """The roles the directory's groups give the user now; None when the user is gone."""
        if found is None:
            return None
        return await self._roles(tenant, *found)

    # --- audit --------------------------------------------------------------------------------

    async def _audit(
        self,
        tenant: TenantEntry | None,
        attempt: Attempt,
        result: str,
        outcome: str,
        extra: Mapping[str, Any],
    ) -> None:
        tenant_id = tenant.tenant_id if tenant is not None else SYSTEM_TENANT_ID
        meta = EventMeta(tenant_id, Actor(attempt.username[:255], auth_method="ldap"), self._hash)
        details = {
            "username": attempt.username[:255],
            "tenant_slug": attempt.tenant_slug[:100],
            "outcome": outcome,
            "ip": attempt.ip,
            "user_agent": attempt.user_agent[:500],
            **extra,
        }
        await self._save(tenant_id, "ldap_login", result, "auth/ldap", details, meta)

    async def _audit_session(
        self,
        session: Session,
        action: str,
        result: str,
        ip: str,
        user_agent: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        meta = EventMeta(session.tenant_id, Actor(session.sub, auth_method="ldap"), self._hash)
        details = {"sid": session.sid, "sub": session.sub, "ip": ip, "user_agent": user_agent}
        details.update(extra or {})
        await self._save(session.tenant_id, action, result, f"session/{session.sid}", details, meta)

    async def _save(
        self,
        tenant_id: UUID,
        action: str,
        result: str,
        target: str,
        details: dict[str, Any],
        meta: EventMeta,
    ) -> None:
        entry = AuditEntry.record(
            entry_id=uuid4(),
            category="authentication",
            action=action,
            result=result,
            target_resource=target,
            details=details,
            meta=meta,
        )
        await asyncio.to_thread(self._app.save_for, tenant_id, entry)


def _digest(refresh_token: str) -> bytes:
    return hashlib.sha256(refresh_token.encode()).digest()


def _drop(early: asyncio.Future[Any] | None) -> None:
    """Give up work started early (a directory read's thread finishes; its answer is dropped)."""
    if early is not None:
        early.cancel()
