"""Bearer authentication: the `Authorization` header to a verified `Principal`."""

from __future__ import annotations

from typing import Any

from api.http.errors import InvalidToken, Unauthenticated
from commands.context import Principal
from infra.tokens import TokenRejectedError, TokenVerifier

PRINCIPAL_KEY = "principal"


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
    return Principal(
        sub=claims.sub,
        tenant_id=claims.tenant_id,
        roles=claims.roles,
        auth_method=claims.auth_method,
        sid=claims.sid,
        jti=claims.jti,
    )


def principal_from_scope(scope: Any) -> Principal:
    """The principal the edge authenticated (a Litestar dependency of every /v1 handler)."""
    principal: Principal = scope["state"][PRINCIPAL_KEY]
    return principal
