"""What a SAMLResponse must pass before any signature is looked at (infra.saml.screening), and
how an assertion's attributes become a profile and mapping values (domain.saml.profile_of)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest

from domain.saml import SamlAssertion, SamlRejected, profile_of
from infra.saml.schemas import validate_xml
from infra.saml.screening import MAX_RESPONSE_CHARS, parse_checked, screen

RESPONSE = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
    'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_r" Version="2.0" InResponseTo="_q">'
    "<saml:Issuer>https://idp.test</saml:Issuer>{body}</samlp:Response>"
)
ASSERTION = (
    '<saml:Assertion ID="_a"><saml:Conditions><saml:AudienceRestriction>'
    "<saml:Audience>urn:sp</saml:Audience></saml:AudienceRestriction></saml:Conditions>"
    "{inner}</saml:Assertion>"
)


def _b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def _reason(message: str) -> str:
    try:
        screened = screen(message)
    except SamlRejected as rejected:
        return rejected.reason
    return screened.refusal.reason if screened.refusal is not None else "accepted"


def test_the_facts_that_choose_the_validation_are_read() -> None:
    screened = screen(_b64(RESPONSE.format(body=ASSERTION.format(inner=""))))
    assert screened.in_response_to == "_q"
    assert screened.audiences == ("urn:sp",)
    assert screened.issuer == "https://idp.test"
    assert screened.refusal is None


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("A" * (MAX_RESPONSE_CHARS + 1), "oversized"),
        ("not base64!", "malformed"),
        (_b64("<unclosed>"), "malformed"),
        (_b64("<other/>"), "malformed"),
        (_b64('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'), "dtd_forbidden"),
        (_b64("<!doctype r><r/>"), "dtd_forbidden"),
        (_b64(RESPONSE.format(body="<!-- hi -->")), "comment_in_message"),
        (_b64(RESPONSE.format(body="<?pi x?>")), "comment_in_message"),
        (
            _b64(
                RESPONSE.format(
                    body='<ds:SignatureMethod Algorithm="http://www.w3.org/2000/'
                    '09/xmldsig#rsa-sha1"/>'
                )
            ),
            "sha1_refused",
        ),
        (
            _b64(
                RESPONSE.format(
                    body='<ds:DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>'
                )
            ),
            "sha1_refused",
        ),
        (
            _b64(
                RESPONSE.format(
                    body='<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3'
                    '.org/2001/04/xmlenc#"><xenc:EncryptionMethod Algorithm="http://www.w3.org/'
                    '2001/04/xmlenc#tripledes-cbc"/></xenc:EncryptedData></saml:EncryptedAssertion>'
                )
            ),
            "weak_encryption",
        ),
    ],
)
def test_refusals(message: str, reason: str) -> None:
    assert _reason(message) == reason


def test_a_document_checked_before_use_is_refused_for_what_it_holds() -> None:
    """`parse_checked` (IdP metadata, logout messages): the refusals of a response, raised."""
    fine = RESPONSE.format(body=ASSERTION.format(inner=""))
    assert parse_checked(fine.encode()).get("ID") == "_r"
    with pytest.raises(SamlRejected) as refused:
        parse_checked(RESPONSE.format(body="<!-- a comment -->").encode())
    assert refused.value.reason == "comment_in_message"
    with pytest.raises(SamlRejected) as refused:
        parse_checked(b"<!DOCTYPE r><r/>")
    assert refused.value.reason == "dtd_forbidden"


def test_schema_validation_gives_the_document_or_the_library_s_codes() -> None:
    protocol = "saml-schema-protocol-2.0.xsd"
    valid = RESPONSE.format(
        body="<samlp:Status><samlp:StatusCode Value="
        '"urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
    )
    valid = valid.replace('Version="2.0"', 'Version="2.0" IssueInstant="2026-01-01T00:00:00Z"')
    document = validate_xml(valid, protocol)
    assert document.get("ID") == "_r"
    assert validate_xml(RESPONSE.format(body=""), protocol) == "invalid_xml"  # no Status
    assert validate_xml("<unclosed>", protocol) == "unloaded_xml"
    assert validate_xml(valid, protocol).get("ID") == "_r"  # the cached schema


def test_a_billion_laughs_is_refused_at_once() -> None:
    entities = "".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10 if i else "lol"}">' for i in range(10)
    )
    bomb = _b64(f"<!DOCTYPE r [{entities}]><r>&l9;</r>")
    started = time.perf_counter()
    assert _reason(bomb) == "dtd_forbidden"
    assert time.perf_counter() - started < 0.1


def _assertion(attributes: dict[str, list[str]]) -> SamlAssertion:
    return SamlAssertion(
        issuer="https://idp.test",
        name_id="p-alice",
        name_id_format=None,
        session_index=None,
        attributes=attributes,
        assertion_id="_a",
        not_on_or_after=datetime.now(UTC),
        in_response_to=None,
    )


def test_the_profile_from_mapped_attributes_and_the_values_roles_match() -> None:
    profile = profile_of(
        _assertion({"urn:x:uid": ["alice"], "memberOf": ["admins", "staff"], "dept": ["Fin"]}),
        {"username": "urn:x:uid", "groups": "memberOf"},
    )
    assert profile.username == "alice"
    assert profile.email is None
    assert {
        "admins",
        "staff",
        "dept=Fin",
        "memberOf=admins",
        "memberOf=staff",
        "urn:x:uid=alice",
    } == set(profile.values)


def test_common_attribute_names_without_a_map_and_the_name_id_last() -> None:
    found = profile_of(_assertion({"mail": ["a@x.test"], "displayName": ["Alice"]}), {})
    assert (found.username, found.email, found.name) == ("p-alice", "a@x.test", "Alice")
