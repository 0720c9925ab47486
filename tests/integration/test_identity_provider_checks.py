"""The OIDC/OAuth and SAML connectivity checks against real HTTP on 127.0.0.1: a small server
publishing a discovery document, a JWKS and IdP metadata (valid, expired, hostile XML)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import RSAKey

from domain.integration.probe import ProbeFailure
from domain.integration.schemas import OAUTH, OIDC, SAML
from infra.oidc.discovery import check_provider
from infra.oidc.jwks import MAX_JWKS_BYTES, JwksCache, JwksUnavailable
from infra.saml.metadata import check_idp
from tests.peers.certificates import issue_server_cert, make_ca
from tests.peers.http import free_port

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    f'<EntityDescriptor xmlns="{MD}" entityID="x">&lol2;</EntityDescriptor>'
)


def _metadata(entity_id: str, cert_pem: str) -> str:
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    return (
        f'<EntityDescriptor xmlns="{MD}" xmlns:ds="{DS}" entityID="{entity_id}">'
        f'<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{base64.b64encode(der).decode()}"
        f"</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>"
        f'<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        f'Location="{entity_id}/sso"/></IDPSSODescriptor></EntityDescriptor>'
    )


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ca, ca_key = make_ca()
    valid = issue_server_cert(ca, ca_key)
    now = datetime.now(UTC)
    expired = issue_server_cert(
        ca, ca_key, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    jwk = RSAKey.generate_key(2048).as_dict(private=False)
    pages = {
        "/.well-known/openid-configuration": json.dumps(
            {"issuer": base, "jwks_uri": f"{base}/jwks", "token_endpoint": f"{base}/token"}
        ),
        "/other/.well-known/openid-configuration": json.dumps(
            {"issuer": "https://evil.example", "jwks_uri": f"{base}/jwks"}
        ),
        "/nokeys/.well-known/openid-configuration": json.dumps(
            {"issuer": f"{base}/nokeys", "jwks_uri": f"{base}/empty-jwks"}
        ),
        "/nojwks/.well-known/openid-configuration": json.dumps({"issuer": f"{base}/nojwks"}),
        "/deadjwks/.well-known/openid-configuration": json.dumps(
            {"issuer": f"{base}/deadjwks", "jwks_uri": f"http://127.0.0.1:{free_port()}/jwks"}
        ),
        "/garbled/.well-known/openid-configuration": "<html>not json</html>",
        "/listed/.well-known/openid-configuration": "[]",
        "/jwks": json.dumps({"keys": [{**jwk, "use": "sig"}]}),
        "/list-jwks": "[]",
        "/big-jwks": json.dumps({"keys": [], "padding": "x" * (MAX_JWKS_BYTES + 1)}),
        "/empty-jwks": json.dumps({"keys": []}),
        "/saml/metadata": _metadata(base, valid.cert_pem),
        "/saml/expired": _metadata(base, expired.cert_pem),
        "/saml/bomb": BOMB,
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = pages.get(self.path)
            self.send_response(200 if page else 404)
            self.end_headers()
            self.wfile.write((page or "not found").encode())

        def do_POST(self) -> None:
            self.send_response(400)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    server.server_close()


def _oidc(**config: object) -> dict[str, object]:
    return OIDC.validate({"client_id": "acgs", "timeout_seconds": 2, **config}, production=True)


def test_oidc_discovery_and_jwks_succeed(idp: str) -> None:
    result = check_provider(_oidc(issuer=idp), oidc=True)
    assert result.failure is None, result.message
    assert (result.connection_established, result.test_query_executed) == (True, True)


def test_oidc_with_another_issuer_is_an_auth_failure(idp: str) -> None:
    result = check_provider(
        _oidc(issuer=idp, discovery_url=f"{idp}/other/.well-known/openid-configuration"),
        oidc=True,
    )
    assert result.failure is ProbeFailure.AUTH_FAILED


def test_oidc_without_a_usable_key_is_a_failed_query(idp: str) -> None:
    result = check_provider(_oidc(issuer=f"{idp}/nokeys"), oidc=True)
    assert result.failure is ProbeFailure.QUERY_FAILED
    result = check_provider(
        _oidc(issuer=idp, allowed_id_token_algorithms=["ES256"]), oidc=True
    )  # the JWKS holds an RSA key only
    assert result.failure is ProbeFailure.QUERY_FAILED


def test_an_unreachable_provider_is_unreachable() -> None:
    result = check_provider(_oidc(issuer=f"http://127.0.0.1:{free_port()}"), oidc=True)
    assert result.failure is ProbeFailure.UNREACHABLE


def test_oauth_with_explicit_endpoints_reaches_the_token_endpoint(idp: str) -> None:
    config = OAUTH.validate(
        {"client_id": "c", "authorization_url": f"{idp}/auth", "token_url": f"{idp}/token"},
        production=True,
    )
    assert check_provider(config, oidc=False).failure is None


@pytest.mark.parametrize("path", ["/garbled", "/listed", "/missing"])
def test_oidc_discovery_that_is_no_json_object_is_a_failed_query(idp: str, path: str) -> None:
    result = check_provider(_oidc(issuer=f"{idp}{path}"), oidc=True)
    assert result.failure is ProbeFailure.QUERY_FAILED
    assert result.message.startswith("the discovery document is not valid JSON (HTTP ")
    assert result.connection_established


def test_oidc_discovery_without_jwks_or_with_jwks_away_is_a_failed_query(idp: str) -> None:
    no_uri = check_provider(_oidc(issuer=f"{idp}/nojwks"), oidc=True)
    assert (no_uri.failure, no_uri.message) == (
        ProbeFailure.QUERY_FAILED, "the discovery document has no jwks_uri"
    )  # fmt: skip
    away = check_provider(_oidc(issuer=f"{idp}/deadjwks"), oidc=True)
    assert away.failure is ProbeFailure.QUERY_FAILED
    assert away.message.startswith("cannot fetch the JWKS (")


def test_oauth_with_discovery_needs_no_jwks(idp: str) -> None:
    config = OAUTH.validate({"client_id": "c", "issuer": f"{idp}/nojwks"}, production=True)
    result = check_provider(config, oidc=False)
    assert (result.failure, result.test_query_executed) == (None, True)


@pytest.mark.parametrize("path", ["/list-jwks", "/big-jwks", "/no-such-jwks"])
def test_a_jwks_that_is_too_large_or_no_object_is_unavailable(idp: str, path: str) -> None:
    cache = JwksCache(f"{idp}{path}", timeout=2)
    with pytest.raises(JwksUnavailable):
        cache.key("k1")
    assert cache.fetches == 1


def _saml(**config: object) -> dict[str, object]:
    return SAML.validate({"sp_entity_id": "https://acgs/sp", **config}, production=True)


def test_saml_metadata_with_a_valid_certificate_succeeds(idp: str) -> None:
    result = check_idp(_saml(idp_metadata_url=f"{idp}/saml/metadata", idp_entity_id=idp))
    assert result.failure is None, result.message


def test_saml_metadata_with_an_expired_certificate_fails(idp: str) -> None:
    result = check_idp(_saml(idp_metadata_url=f"{idp}/saml/expired"))
    assert result.failure is ProbeFailure.AUTH_FAILED
    assert "valid" in result.message


def test_saml_metadata_of_another_entity_or_hostile_xml_fails(idp: str) -> None:
    other = check_idp(_saml(idp_metadata_url=f"{idp}/saml/metadata", idp_entity_id="urn:other"))
    assert other.failure is ProbeFailure.QUERY_FAILED
    bomb = check_idp(_saml(idp_metadata_url=f"{idp}/saml/bomb"))
    assert bomb.failure is ProbeFailure.QUERY_FAILED
    assert "forbidden" in bomb.message


def test_saml_metadata_url_down_or_missing(idp: str) -> None:
    down = check_idp(_saml(idp_metadata_url=f"http://127.0.0.1:{free_port()}/md"))
    assert down.failure is ProbeFailure.UNREACHABLE
    missing = check_idp(_saml(idp_metadata_url=f"{idp}/saml/nothing"))
    assert missing.failure is ProbeFailure.QUERY_FAILED


# The checks below need no server: the IdP's facts are in the configuration itself.

NOT_BASE64 = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----"
NOT_DER = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"


def _certificates() -> tuple[str, str]:
    """A certificate valid now and one that expired yesterday (PEM)."""
    ca, ca_key = make_ca()
    now = datetime.now(UTC)
    expired = issue_server_cert(
        ca, ca_key, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    return issue_server_cert(ca, ca_key).cert_pem, expired.cert_pem


def test_saml_signing_certificates_without_metadata_need_one_valid_now() -> None:
    valid, expired = _certificates()
    config = {"idp_entity_id": "urn:idp", "idp_sso_url": "https://idp.test/sso"}
    ok = check_idp({**config, "idp_signing_certificates": [NOT_BASE64, valid]})
    assert (ok.failure, ok.authentication_successful, ok.message) == (None, True, "ok")
    for unusable in ([expired], ["not a certificate"], [NOT_BASE64], [NOT_DER], []):
        refused = check_idp({**config, "idp_signing_certificates": unusable})
        assert refused.failure is ProbeFailure.AUTH_FAILED, unusable
        assert not refused.authentication_successful
        assert refused.message == "no configured signing certificate is valid now"


def test_saml_inline_metadata_counts_only_its_signing_certificates() -> None:
    valid, _ = _certificates()
    signing = _metadata("urn:idp", valid)
    encryption_only = signing.replace('use="signing"', 'use="encryption"')
    refused = check_idp({"idp_metadata_xml": encryption_only})
    assert refused.failure is ProbeFailure.AUTH_FAILED
    assert refused.message == "no signing certificate of the IdP is valid now"
    der = signing.split("<ds:X509Certificate>")[1].split("</ds:X509Certificate>")[0]
    broken = signing.replace(der, "abc")  # not base64: skipped, not fatal
    assert check_idp({"idp_metadata_xml": broken}).failure is ProbeFailure.AUTH_FAILED
    assert check_idp({"idp_metadata_xml": signing, "idp_entity_id": "urn:idp"}).failure is None
