"""One SAML service provider per SAML integration, on python3-saml in strict mode.

Built from the integration's configuration (the IdP's metadata, fetched or inline, or its
entity id, SSO/SLO URLs and signing certificates) and the service's URLs. What it does:

- `metadata()`: the SP metadata (signed when an SP key is configured);
- `login_url(request_id, ...)`: a signed AuthnRequest over HTTP-Redirect whose ID is the
  service's one-time sign-in request id, so the answer's `InResponseTo` names it;
- `validate(message, request_id)`: the response checked by python3-saml (schema, one assertion,
  signature against the configured IdP certificate(s) only, never a certificate carried in the
  message; SHA-1 refused; audience, issuer, destination, subject confirmation, `InResponseTo`;
  encrypted assertions decrypted with the SP key) and then by this module, stricter: the
  destination and every recipient equal this SP's ACS URL exactly, the signed assertion answers
  `request_id` (or answers nothing, for an unsolicited response), and its
  `NotBefore`/`NotOnOrAfter` hold with the integration's clock skew;
- single logout: `logout_url` (a signed LogoutRequest), `logout_request` (an IdP's
  LogoutRequest checked, with the answer to redirect to), `logout_response` (the IdP's answer to
  ours, bound to our request id).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from domain.saml import IdpLogout, SamlAssertion, SamlRejected
from infra.saml import schemas
from infra.saml.screening import NS, decode, parse_checked

# python3-saml's own drift (300 s, process-wide) is widened to the largest skew an integration
# may set: the integration's skew is then what decides (checked here, after validation).
MAX_SKEW_SECONDS = 600
C.ALLOWED_CLOCK_DRIFT = MAX_SKEW_SECONDS
schemas.install()  # the SAML XSDs compiled once per thread, not on every response
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"


@dataclass(frozen=True)
class SpUrls:
    """Where the service receives SAML messages for one integration."""

    entity_id: str
    acs: str
    slo: str


def _request_data(url: str, get_data: Mapping[str, str] | None = None) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "https": "on" if parts.scheme == "https" else "off",
        "http_host": parts.netloc,
        "script_name": parts.path,
        "get_data": dict(get_data or {}),
        "post_data": {},
    }


def _idp_settings(config: Mapping[str, Any], fetch: Callable[[str, float], str]) -> dict[str, Any]:
    xml = config.get("idp_metadata_xml")
    if config.get("idp_metadata_url"):
        xml = fetch(str(config["idp_metadata_url"]), float(config.get("timeout_seconds", 5)))
    if xml:
        parse_checked(xml.encode() if isinstance(xml, str) else xml)  # no DTD, comment ...
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml)
        idp: dict[str, Any] = parsed["idp"]
        if "x509certMulti" not in idp and "x509cert" in idp:
            idp["x509certMulti"] = {"signing": [idp["x509cert"]]}
        return idp
    certs = list(config.get("idp_signing_certificates", []))
    idp = {
        "entityId": config["idp_entity_id"],
        "singleSignOnService": {"url": config["idp_sso_url"], "binding": C.BINDING_HTTP_REDIRECT},
        "x509certMulti": {"signing": certs},
    }
    if config.get("idp_slo_url"):
        idp["singleLogoutService"] = {"url": config["idp_slo_url"],
                                      "binding": C.BINDING_HTTP_REDIRECT}  # fmt: skip
    return idp


def fetch_metadata(url: str, timeout: float) -> str:
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise SamlRejected("idp_metadata_unavailable", type(exc).__name__) from None
    if response.status_code != 200:
        raise SamlRejected("idp_metadata_unavailable", f"HTTP {response.status_code}")
    return response.text


def _saml_time(value: str | None) -> float | None:
    if not value:
        return None
    return float(OneLogin_Saml2_Utils.parse_SAML_to_time(value))


class ServiceProvider:
    def __init__(
        self,
        integration_id: UUID,
        config: Mapping[str, Any],
        urls: SpUrls,
        *,
        fetch: Callable[[str, float], str] = fetch_metadata,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.integration_id = integration_id
        self.urls = urls
        self.allow_idp_initiated = bool(config.get("allow_idp_initiated", False))
        self.skew = int(config.get("allowed_clock_skew_seconds", 120))
        self.session_seconds = int(config.get("session_seconds", 8 * 3600))
        self.attribute_map: dict[str, str] = dict(config.get("attribute_map") or {})
        self.allowed_redirects: tuple[str, ...] = tuple(config.get("allowed_redirect_urls") or ())
        self._clock = clock
        try:
            self.settings = self._settings(config, urls, fetch)
        except (OneLogin_Saml2_Error, KeyError, ValueError, TypeError) as exc:
            raise SamlRejected("integration_invalid", str(exc)[:200]) from None
        self.idp_entity_id: str = self.settings.get_idp_data()["entityId"]

    @staticmethod
    def _settings(
        config: Mapping[str, Any], urls: SpUrls, fetch: Callable[[str, float], str]
    ) -> OneLogin_Saml2_Settings:
        key = config.get("sp_private_key")
        cert = config.get("sp_certificate")
        signing = bool(key and cert)
        return OneLogin_Saml2_Settings(
            {
                "strict": True,
                "debug": False,
                "sp": {
                    "entityId": urls.entity_id,
                    "assertionConsumerService": {"url": urls.acs, "binding": C.BINDING_HTTP_POST},
                    "singleLogoutService": {"url": urls.slo, "binding": C.BINDING_HTTP_REDIRECT},
                    "NameIDFormat": UNSPECIFIED,
                    "x509cert": cert or "",
                    "privateKey": key or "",
                },
                "idp": _idp_settings(config, fetch),
                "security": {
                    "authnRequestsSigned": signing,
                    "logoutRequestSigned": signing,
                    "logoutResponseSigned": signing,
                    "signMetadata": signing,
                    "wantMessagesSigned": False,
                    "wantAssertionsSigned": bool(config.get("want_assertions_signed", True)),
                    "wantAssertionsEncrypted": bool(config.get("want_assertions_encrypted")),
                    "wantNameId": True,
                    "wantAttributeStatement": False,
                    "requestedAuthnContext": False,
                    "rejectDeprecatedAlgorithm": True,
                    "rejectUnsolicitedResponsesWithInResponseTo": True,
                    "allowRepeatAttributeName": True,
                    "wantXMLValidation": True,
                    "signatureAlgorithm": C.RSA_SHA256,
                    "digestAlgorithm": C.SHA256,
                },
            },
            sp_validation_only=False,
        )

    # --- metadata and login --------------------------------------------------------------------

    def metadata(self) -> str:
        xml = self.settings.get_sp_metadata()
        return xml.decode() if isinstance(xml, bytes) else str(xml)

    def login_url(self, request_id: str, relay_state: str) -> str:
        auth = self._auth(self.urls.acs)
        auth.authn_request_class = _with_id(OneLogin_Saml2_Authn_Request, request_id)
        return str(auth.login(return_to=relay_state))

    def redirect_allowed(self, url: str) -> bool:
        return any(
            url == allowed or (allowed.endswith("/") and url.startswith(allowed))
            for allowed in self.allowed_redirects
        )

    # --- the assertion consumer ---------------------------------------------------------------

    def validate(self, message: str, request_id: str | None) -> SamlAssertion:
        """The assertion of a response already screened (infra.saml.screening), or SamlRejected."""
        response = OneLogin_Saml2_Response(self.settings, message)
        if not response.is_valid(_request_data(self.urls.acs), request_id):
            raise SamlRejected(_reason(response.get_error()), response.get_error())
        document = response.decrypted_document if response.encrypted else response.document
        self._check_binding(document, request_id)
        not_on_or_after = self._check_times(document)
        try:  # a signed assertion may still lack a usable NameID: refused, never an error
            name_id = str(response.get_nameid())
            name_id_format = response.get_nameid_format()
        except OneLogin_Saml2_ValidationError as exc:
            raise SamlRejected(_reason(str(exc)), str(exc)[:200]) from None
        return SamlAssertion(
            issuer=self.idp_entity_id,
            name_id=name_id,
            name_id_format=name_id_format,
            session_index=response.get_session_index(),
            attributes={k: [str(v) for v in vs] for k, vs in response.get_attributes().items()},
            assertion_id=str(response.get_assertion_id()),
            not_on_or_after=datetime.fromtimestamp(not_on_or_after, UTC),
            in_response_to=request_id,
        )

    def _check_binding(self, document: Any, request_id: str | None) -> None:
        destination = document.get("Destination")
        if destination is not None and destination != self.urls.acs:
            raise SamlRejected("wrong_destination", destination[:200])
        confirmations = document.findall(
            "saml:Assertion/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData",
            NS,
        )
        # python3-saml has refused a response without a bearer SubjectConfirmationData already
        for data in confirmations:
            if data.get("Recipient") != self.urls.acs:
                raise SamlRejected("wrong_recipient", str(data.get("Recipient"))[:200])
            if data.get("InResponseTo") != request_id:
                raise SamlRejected(
                    "in_response_to_mismatch", "the assertion answers another request"
                )
        if request_id is not None and document.get("InResponseTo") != request_id:
            raise SamlRejected("in_response_to_mismatch")

    def _check_times(self, document: Any) -> float:
        now = self._clock()
        conditions = document.find("saml:Assertion/saml:Conditions", NS)
        not_before = _saml_time(conditions.get("NotBefore") if conditions is not None else None)
        not_after = _saml_time(conditions.get("NotOnOrAfter") if conditions is not None else None)
        if not_after is None:
            raise SamlRejected("no_expiry", "the assertion has no NotOnOrAfter")
        if not_before is not None and now + self.skew < not_before:
            raise SamlRejected("not_yet_valid")
        if now - self.skew >= not_after:
            raise SamlRejected("expired")
        return not_after + self.skew

    # --- single logout -------------------------------------------------------------------------

    def logout_url(
        self,
        request_id: str,
        name_id: str,
        name_id_format: str | None,
        session_index: str | None,
        relay_state: str,
    ) -> str | None:
        """A signed LogoutRequest to the IdP (None when the IdP has no SLO endpoint)."""
        if not self.settings.get_idp_data().get("singleLogoutService", {}).get("url"):
            return None
        auth = self._auth(self.urls.slo)
        auth.logout_request_class = _with_id(OneLogin_Saml2_Logout_Request, request_id)
        return str(
            auth.logout(
                return_to=relay_state,
                name_id=name_id,
                session_index=session_index,
                name_id_format=name_id_format,
            )
        )

    def logout_request(self, query: Mapping[str, str]) -> IdpLogout:
        """An IdP-initiated LogoutRequest (HTTP-Redirect; it must be signed by the IdP)."""
        decode(query.get("SAMLRequest", ""))
        if not query.get("Signature"):
            raise SamlRejected("signature_missing", "an unsigned LogoutRequest")
        auth = self._auth(self.urls.slo, query)
        xml = OneLogin_Saml2_Logout_Request(self.settings, query["SAMLRequest"]).get_xml()
        parse_checked(xml if isinstance(xml, bytes) else str(xml).encode())
        redirect = auth.process_slo(keep_local_session=True)
        if auth.get_errors() or not redirect:
            raise SamlRejected("invalid_logout_request", str(auth.get_last_error_reason()))
        name_id = OneLogin_Saml2_Logout_Request.get_nameid(xml)
        indexes = OneLogin_Saml2_Logout_Request.get_session_indexes(xml)
        return IdpLogout(str(name_id), [str(i) for i in indexes], str(redirect))

    def logout_response(self, query: Mapping[str, str], request_id: str) -> None:
        """The IdP's answer to our LogoutRequest `request_id` (signed; SamlRejected unless it
        reports success)."""
        decode(query.get("SAMLResponse", ""))
        if not query.get("Signature"):
            raise SamlRejected("signature_missing", "an unsigned LogoutResponse")
        auth = self._auth(self.urls.slo, query)
        auth.process_slo(keep_local_session=True, request_id=request_id)
        if auth.get_errors():
            raise SamlRejected("invalid_logout_response", str(auth.get_last_error_reason()))

    def _auth(self, url: str, query: Mapping[str, str] | None = None) -> OneLogin_Saml2_Auth:
        return OneLogin_Saml2_Auth(_request_data(url, query), self.settings)


def _with_id(base: type[Any], request_id: str) -> type[Any]:
    """`base` (a python3-saml request class) whose ID is the service's sign-in request id."""

    class WithId(base):  # type: ignore[misc]
        def _generate_request_id(self) -> str:
            return request_id

    return WithId


_REASONS = (
    ("Signature validation failed", "signature_invalid"),
    ("No Signature found", "signature_missing"),
    ("is not signed", "signature_missing"),
    ("must contain 1 assertion", "assertion_count"),
    ("not a valid audience", "wrong_audience"),
    ("Invalid issuer", "wrong_issuer"),
    ("was received at", "wrong_destination"),
    ("SubjectConfirmation", "wrong_recipient"),
    ("InResponseTo", "in_response_to_mismatch"),
    ("is not encrypted", "not_encrypted"),
    ("Could not validate timestamp: expired", "expired"),
    ("Could not validate timestamp: not yet valid", "not_yet_valid"),
    ("Deprecated", "sha1_refused"),
    ("saml-schema", "schema_invalid"),
    ("Found an invalid Signed Element", "signature_wrapping"),
    ("Duplicated", "signature_wrapping"),
    ("Unexpected number of", "signature_wrapping"),
    ("decrypt", "decryption_failed"),
    ("status", "idp_status"),
    ("NameID not found", "name_id_missing"),
    ("empty NameID", "name_id_missing"),
)


def _reason(error: str | None) -> str:
    text = error or ""
    for needle, reason in _REASONS:
        if needle.lower() in text.lower():
            return reason
    return "invalid_response"
