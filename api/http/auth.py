"""Bearer authentication: the `Authorization` header to a verified `Principal`."""

from __future__ import annotations

from typing import Any

from api.http.errors import InvalidToken, Unauthenticated
from commands.context import Principal
from infra.tokens import TokenClaims, TokenRejectedError, TokenVerifier
from infra.tokens.verifier import VERIFIED_CACHE_SIZE

PRINCIPAL_KEY = "principal"
# The principal of each claims object the verifier returned (it returns the same object for a
# token it remembers): a principal is immutable, so a token's requests share one, and what it
# works out once (its effective roles, its actor) is done once per token rather than per request.
# Keyed by the claims' identity, the claims kept alongside: while its entry lasts, the id is
# theirs alone.
_principals: dict[int, tuple[TokenClaims, Principal]] = {}


def authenticate(verifier: TokenVerifier, authorization: bytes | None) -> Principal:
    if not authorization:
        raise Unauthenticated("a bearer token is required", {"header": "Authorization"})
    scheme, _, credentials = authorization.decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    try:
        claims = verifier.verify(credentials.strip())
    except TokenRejectedError as exc:
        raise InvalidToken("the access token is not valid", {"reason": exc.reason}) from None
    known = _principals.get(id(claims))
    if known is not None:
        return known[1]
    principal = Principal(
        sub=claims.sub,
        tenant_id=claims.tenant_id,
        roles=claims.roles,
        auth_method=claims.auth_method,
        sid=claims.sid,
        jti=claims.jti,
    )
    if len(_principals) >= VERIFIED_CACHE_SIZE:
        _principals.clear()
    _principals[id(claims)] = (claims, principal)
    return principal


def principal_from_scope(scope: Any) -> Principal:
    """The principal the edge authenticated (a Litestar dependency of every /v1 handler)."""
    principal: Principal = scope["state"][PRINCIPAL_KEY]
    return principal
