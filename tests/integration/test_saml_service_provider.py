"""A SAML integration's service provider against responses of the real test IdP (pysaml2),
genuine or changed and signed again with the IdP's key: the checks this service makes beyond
python3-saml's (an exact destination and recipient, every subject confirmation answering the
request, the response's own InResponseTo, an expiry, the integration's clock skew), an IdP
configured without metadata, and the refusals of a configuration or a logout answer."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from lxml import etree

from domain.saml import SamlRejected
from infra.saml.service_provider import ServiceProvider, SpUrls, fetch_metadata
from tests.peers.saml_idp import NS, KeyPair, SamlIdp, make_key_pair

pytestmark = pytest.mark.saml

SP = SpUrls("urn:acgs:sp:unit", "https://acgs.test/saml/acs", "https://acgs.test/saml/slo")
REQUEST = "_0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def sp_keys() -> KeyPair:
    return make_key_pair("SP unit")


def _provider(idp: SamlIdp, keys: KeyPair, **config: Any) -> ServiceProvider:
    base = {"sp_private_key": keys.key_pem, "sp_certificate": keys.cert_pem}
    return ServiceProvider(uuid4(), {**base, **config}, SP)


@pytest.fixture(scope="module")
def sp(saml_idp: SamlIdp, sp_keys: KeyPair) -> ServiceProvider:
    provider = _provider(saml_idp, sp_keys, idp_metadata_xml=saml_idp.metadata_xml)
    saml_idp.trust(provider.metadata(), sp_cert_pem=sp_keys.cert_pem)
    return provider


def _answer(idp: SamlIdp, change: Callable[[etree._Element], None] | None = None) -> str:
    genuine = idp.response_for("alice", SP.entity_id, SP.acs, REQUEST)
    return genuine if change is None else idp.resign(genuine, change)


def _reason(sp: ServiceProvider, message: str, request_id: str | None = REQUEST) -> str:
    with pytest.raises(SamlRejected) as refused:
        sp.validate(message, request_id)
    return refused.value.reason


def _confirmation(assertion: etree._Element) -> etree._Element:
    found = assertion.find("saml:Subject/saml:SubjectConfirmation", NS)
    assert found is not None
    return found


def _data(assertion: etree._Element) -> etree._Element:
    found = _confirmation(assertion).find("saml:SubjectConfirmationData", NS)
    assert found is not None
    return found


def _conditions(assertion: etree._Element) -> etree._Element:
    found = assertion.find("saml:Conditions", NS)
    assert found is not None
    return found


def _saml_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_genuine_answer_from_inline_metadata_is_accepted(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    assertion = sp.validate(_answer(saml_idp), REQUEST)
    assert (assertion.name_id, assertion.in_response_to) == ("p-alice", REQUEST)
    assert assertion.issuer == saml_idp.entity_id


def test_a_destination_that_only_starts_with_the_acs_is_refused(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    def elsewhere(assertion: etree._Element) -> None:
        assertion.getparent().set("Destination", SP.acs + "/elsewhere")

    assert _reason(sp, _answer(saml_idp, elsewhere)) == "wrong_destination"


def test_a_recipient_that_only_contains_the_acs_is_refused(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    def longer(assertion: etree._Element) -> None:
        _data(assertion).set("Recipient", SP.acs + ".evil.example")

    assert _reason(sp, _answer(saml_idp, longer)) == "wrong_recipient"


def test_every_subject_confirmation_must_answer_the_request(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    def second(assertion: etree._Element) -> None:
        other = deepcopy(_confirmation(assertion))
        other.find("saml:SubjectConfirmationData", NS).set("InResponseTo", "_another")
        _confirmation(assertion).addnext(other)

    assert _reason(sp, _answer(saml_idp, second)) == "in_response_to_mismatch"


def test_a_response_that_names_no_request_does_not_answer_one(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    def unnamed(assertion: etree._Element) -> None:
        del assertion.getparent().attrib["InResponseTo"]

    assert _reason(sp, _answer(saml_idp, unnamed)) == "in_response_to_mismatch"


def test_a_response_without_subject_confirmation_data_is_refused(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    def bare(assertion: etree._Element) -> None:
        _confirmation(assertion).remove(_data(assertion))

    assert _reason(sp, _answer(saml_idp, bare)) == "wrong_recipient"


def test_an_assertion_without_an_expiry_is_refused(saml_idp: SamlIdp, sp: ServiceProvider) -> None:
    def endless(assertion: etree._Element) -> None:
        for name in ("NotBefore", "NotOnOrAfter"):
            _conditions(assertion).attrib.pop(name, None)

    assert _reason(sp, _answer(saml_idp, endless)) == "no_expiry"


def test_an_assertion_valid_only_beyond_the_clock_skew_is_refused(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    def later(assertion: etree._Element) -> None:  # within python3-saml's drift, past ours
        _conditions(assertion).set("NotBefore", _saml_time(datetime.now(UTC) + timedelta(0, 300)))

    assert sp.skew == 120
    assert _reason(sp, _answer(saml_idp, later)) == "not_yet_valid"


def test_a_refusal_python3_saml_gives_no_known_reason_for_is_an_invalid_response(
    saml_idp: SamlIdp, sp: ServiceProvider
) -> None:
    def unconditional(assertion: etree._Element) -> None:
        assertion.remove(_conditions(assertion))

    assert _reason(sp, _answer(saml_idp, unconditional)) == "invalid_response"


def test_metadata_with_two_signing_certificates_accepts_either(
    saml_idp: SamlIdp, sp_keys: KeyPair
) -> None:
    """An IdP rotating its key publishes both certificates for a while."""
    root = etree.fromstring(saml_idp.metadata_xml.encode())
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    idp = root.find(f"{{{md}}}IDPSSODescriptor")
    assert idp is not None
    signing = [k for k in idp.findall(f"{{{md}}}KeyDescriptor") if k.get("use") != "encryption"]
    other = deepcopy(signing[0])
    cert = other.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert cert is not None
    cert.text = sp_keys.cert_body
    signing[0].addnext(other)
    rotated = _provider(saml_idp, sp_keys, idp_metadata_xml=etree.tostring(root).decode())
    saml_idp.trust(rotated.metadata(), sp_cert_pem=sp_keys.cert_pem)  # not left to other tests
    assert len(rotated.settings.get_idp_data()["x509certMulti"]["signing"]) == 2
    assert rotated.validate(_answer(saml_idp), REQUEST).name_id == "p-alice"


@pytest.mark.parametrize("name_id", [None, ""])
def test_a_signed_assertion_without_a_name_id_is_refused_not_an_error(
    saml_idp: SamlIdp, sp: ServiceProvider, name_id: str | None
) -> None:
    def nameless(assertion: etree._Element) -> None:
        subject = assertion.find("saml:Subject", NS)
        assert subject is not None
        found = subject.find("saml:NameID", NS)
        assert found is not None
        if name_id is None:
            subject.remove(found)
        else:
            found.text = name_id

    assert _reason(sp, _answer(saml_idp, nameless)) == "name_id_missing"


def test_an_idp_configured_without_metadata(saml_idp: SamlIdp, sp_keys: KeyPair) -> None:
    config = {
        "idp_entity_id": saml_idp.entity_id,
        "idp_sso_url": f"{saml_idp.url}/sso/redirect",
        "idp_signing_certificates": [saml_idp.keys.cert_pem],
    }
    without_slo = _provider(saml_idp, sp_keys, **config)
    assert without_slo.validate(_answer(saml_idp), REQUEST).name_id == "p-alice"
    assert without_slo.logout_url("_r", "p-alice", None, None, "_r") is None
    with_slo = _provider(saml_idp, sp_keys, **config, idp_slo_url=f"{saml_idp.url}/slo/redirect")
    url = with_slo.logout_url("_r", "p-alice", None, None, "_r")
    assert url is not None
    assert url.startswith(f"{saml_idp.url}/slo/redirect?SAMLRequest=")


def test_a_configuration_missing_the_idp_is_an_invalid_integration(sp_keys: KeyPair) -> None:
    with pytest.raises(SamlRejected) as refused:
        ServiceProvider(uuid4(), {"sp_certificate": sp_keys.cert_pem}, SP)
    assert refused.value.reason == "integration_invalid"


def test_metadata_that_cannot_be_fetched_is_unavailable(saml_idp: SamlIdp) -> None:
    with pytest.raises(SamlRejected) as refused:
        fetch_metadata(f"{saml_idp.url}/no-such-metadata", 2.0)
    assert (refused.value.reason, refused.value.detail) == ("idp_metadata_unavailable", "HTTP 404")


def _logout_response(destination: str) -> str:
    xml = (
        '<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr" Version="2.0" '
        f'IssueInstant="{_saml_time(datetime.now(UTC))}" Destination="{destination}" '
        f'InResponseTo="{REQUEST}"><saml:Issuer>https://idp.test</saml:Issuer>'
        '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
        "</samlp:Status></samlp:LogoutResponse>"
    )
    deflated = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflated.compress(xml.encode()) + deflated.flush()
    return base64.b64encode(raw).decode()


def test_a_logout_answer_must_be_signed_by_the_idp(sp: ServiceProvider) -> None:
    answer = _logout_response(SP.slo)
    with pytest.raises(SamlRejected) as unsigned:
        sp.logout_response({"SAMLResponse": answer}, REQUEST)
    assert unsigned.value.reason == "signature_missing"
    forged = {
        "SAMLResponse": answer,
        "SigAlg": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "Signature": base64.b64encode(b"\x00" * 256).decode(),
    }
    with pytest.raises(SamlRejected) as refused:
        sp.logout_response(forged, REQUEST)
    assert refused.value.reason == "invalid_logout_response"
