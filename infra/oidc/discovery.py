"""The connectivity test of an OIDC or OAuth provider: fetch its discovery document (from
`discovery_url`, or under `issuer`), check that it names the configured issuer, then fetch its
JWKS and check that it holds a key for an allowed ID-token algorithm. A plain OAuth provider
without discovery is tested by reaching its token endpoint.

Steps as reported: connection_established (the provider answered), authentication_successful
(its discovery document proves the configured issuer), test_query_executed (its JWKS holds a
usable key). Redirects are not followed; every request has the configured timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from domain.integration.probe import ProbeFailure, ProbeResult

WELL_KNOWN = "/.well-known/openid-configuration"
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def discovery_url(config: dict[str, Any]) -> str | None:
    if config.get("discovery_url"):
        return str(config["discovery_url"])
    if config.get("issuer"):
        return str(config["issuer"]).rstrip("/") + WELL_KNOWN
    return None


def check_provider(config: dict[str, Any], *, oidc: bool) -> ProbeResult:
    started = time.perf_counter()
    timeout = float(config.get("timeout_seconds", 5))

    def result(**kw: Any) -> ProbeResult:
        return ProbeResult(latency_ms=round((time.perf_counter() - started) * 1000), **kw)

    url = discovery_url(config)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        try:
            if url is None:  # OAuth with explicit endpoints: the token endpoint must answer
                client.post(str(config["token_url"]), data={"grant_type": "client_credentials"})
                return result(
                    connection_established=True,
                    authentication_successful=True,
                    test_query_executed=True,
                )
            response = client.get(url)
        except httpx.HTTPError as exc:
            return result(
                connection_established=False,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.UNREACHABLE,
                message=f"cannot reach the provider ({type(exc).__name__})",
            )
        document = _json(response)
        if document is None:
            return result(
                connection_established=True,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.QUERY_FAILED,
                message=f"the discovery document is not valid JSON (HTTP {response.status_code})",
            )
        expected = config.get("issuer")
        if expected and str(document.get("issuer", "")).rstrip("/") != str(expected).rstrip("/"):
            return result(
                connection_established=True,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.AUTH_FAILED,
                message="the discovery document names another issuer",
            )
        if not oidc:
            return result(
                connection_established=True,
                authentication_successful=True,
                test_query_executed=True,
            )
        return _check_jwks(client, document, config, result)


def _check_jwks(
    client: httpx.Client,
    document: dict[str, Any],
    config: dict[str, Any],
    result: Callable[..., ProbeResult],
) -> ProbeResult:
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        return result(
            connection_established=True,
            authentication_successful=True,
            test_query_executed=False,
            failure=ProbeFailure.QUERY_FAILED,
            message="the discovery document has no jwks_uri",
        )
    try:
        jwks = _json(client.get(jwks_uri))
    except httpx.HTTPError as exc:
        return result(
            connection_established=True,
            authentication_successful=True,
            test_query_executed=False,
            failure=ProbeFailure.QUERY_FAILED,
            message=f"cannot fetch the JWKS ({type(exc).__name__})",
        )
    allowed = config.get("allowed_id_token_algorithms", ["RS256"])
    key_types = {_KEY_TYPES[a[:2]] for a in allowed if a[:2] in _KEY_TYPES}
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    usable = [
        k
        for k in (keys or [])
        if isinstance(k, dict) and k.get("kty") in key_types and k.get("use", "sig") == "sig"
    ]
    if not usable:
        return result(
            connection_established=True,
            authentication_successful=True,
            test_query_executed=False,
            failure=ProbeFailure.QUERY_FAILED,
            message="the JWKS holds no signing key for an allowed algorithm",
        )
    return result(
        connection_established=True, authentication_successful=True, test_query_executed=True
    )


def _json(response: httpx.Response) -> dict[str, Any] | None:
    if response.status_code != 200:
        return None
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
