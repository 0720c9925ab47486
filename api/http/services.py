"""Everything the HTTP layer uses, built once per app from the system (the composition root's
HTTP part). Handlers and the edge receive it; none of them reaches for globals."""

from __future__ import annotations

from dataclasses import dataclass

from api.bootstrap import System
from api.http.decision_metrics import DecisionCollector
from api.http.directory import CACHE_SECONDS, TenantDirectory
from api.http.idempotency import Idempotency
from api.http.metrics import ApiMetrics
from api.http.quotas import ConcurrencyLimiter, RateLimiter
from api.http.quotas.memory import InProcessConcurrencyLimiter, SlidingWindowRateLimiter
from api.http.quotas.redis import RedisConcurrencyLimiter, RedisRateLimiter, redis_client
from api.http.quotas.storage import StorageMeter
from api.identity import DirectoryRegistry, build_sign_in
from api.oidc import build_oidc_sign_in
from api.saml import build_saml
from api.settings import Settings
from api.tokens import key_ring, token_verifier
from commands.oidc_sign_in import OidcSignIn
from commands.saml_sign_in import SamlSignIn
from commands.sign_in import SignIn
from commands.tenants import TenantCommands
from infra.postgres.database import Database
from infra.postgres.sessions import RevocationList
from infra.tokens import KeyRing, TokenIssuer, TokenVerifier

API_ENDPOINT_TEMPLATE = "https://{slug}.api.acgs2.com"


@dataclass
class ApiServices:
    system: System
    constitutional_hash: str
    keys: KeyRing
    verifier: TokenVerifier
    directory: TenantDirectory
    rate_limiter: RateLimiter
    concurrency: ConcurrencyLimiter
    storage: StorageMeter
    idempotency: Idempotency
    metrics: ApiMetrics
    sign_in: SignIn
    directories: DirectoryRegistry  # the warm LDAP connections sign-in uses
    revocations: RevocationList
    saml: SamlSignIn
    oidc: OidcSignIn

    async def close(self) -> None:
        """Release what the HTTP services hold beyond the system (the quota store's client, the
        directories' connections)."""
        if self.shared_quotas is not None:
            await self.shared_quotas.close()
        self.directories.close()

    @property
    def shared_quotas(self) -> RedisRateLimiter | None:
        """The Redis limiter when quotas are shared between processes (readiness reports it)."""
        limiter = self.rate_limiter
        return limiter if isinstance(limiter, RedisRateLimiter) else None

    @property
    def tenants(self) -> TenantCommands:
        return self.system.tenants

    @property
    def database(self) -> Database:
        return self.system.database

    @classmethod
    def build(cls, system: System, *, tenant_cache_seconds: float = CACHE_SECONDS) -> ApiServices:
        settings = system.settings
        keys = key_ring(settings)
        keys.ensure()
        metrics = ApiMetrics(
            system.projection_status,
            system.worker_status,
            system.breakers.snapshot if system.breakers is not None else dict,
        )
        metrics.registry.register(DecisionCollector(system))
        revocations = RevocationList(system.database)
        directories = DirectoryRegistry(system)
        sign_in = build_sign_in(
            system, system.database, TokenIssuer(keys), revocations, directories
        )
        rate_limiter, concurrency = _limiters(settings)
        return cls(
            system=system,
            constitutional_hash=settings.constitutional_hash,
            keys=keys,
            verifier=token_verifier(settings, keys),
            directory=TenantDirectory(system.database, ttl_seconds=tenant_cache_seconds),
            rate_limiter=rate_limiter,
            concurrency=concurrency,
            storage=StorageMeter(system.database),
            idempotency=Idempotency(system.database),
            metrics=metrics,
            sign_in=sign_in,
            directories=directories,
            revocations=revocations,
            saml=build_saml(system, system.database, sign_in),
            oidc=build_oidc_sign_in(system, system.database, sign_in),
        )


def _limiters(settings: Settings) -> tuple[RateLimiter, ConcurrencyLimiter]:
    """In-process limiters, or Redis ones shared by every process when ACGS_REDIS_URL is set."""
    if settings.redis_url is None:
        return SlidingWindowRateLimiter(), InProcessConcurrencyLimiter()
    client = redis_client(settings.redis_url)
    mode = settings.redis_on_failure
    return (
        RedisRateLimiter(client, on_failure=mode),
        RedisConcurrencyLimiter(client, on_failure=mode),
    )
