"""The known attacks on a SAML service provider, each sent over real HTTP to the ACS (or SLO)
after a genuine sign-in started at a real pysaml2 IdP: each is refused with 401
INVALID_ASSERTION, audited with its reason, and signs nobody in.

Signature wrapping follows the eight XSW shapes of SAML Raider (the attacker's assertion or
response placed around, before, after or inside the signed original), built with lxml from a
genuine response; forged timings and audiences are re-signed with the IdP's own key (signxml),
so only the check under test can refuse them."""

from __future__ import annotations

import base64
import copy
import resource
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import xmlsec
from lxml import etree

from domain.tenancy import SYSTEM_TENANT_ID
from tests.e2e.saml_support import Browser, SamlTenant, audit_rows
from tests.peers.http import HASH, Api
from tests.peers.saml_idp import DS, NS, SAMLP, SamlIdp, make_key_pair

pytestmark = [pytest.mark.security, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.saml]
Tamper = Callable[[etree._Element], etree._Element]


@pytest.fixture
def tenant(api: Api, platform: httpx.Client, unique: str) -> Iterator[SamlTenant]:
    made = SamlTenant(api, platform, f"xsw-{unique}")
    yield made
    made.admin.close()


@pytest.fixture
def browser(api: Api) -> Iterator[Browser]:
    made = Browser(api)
    yield made
    made.close()


@pytest.fixture
def integration(tenant: SamlTenant, saml_idp: SamlIdp) -> str:
    return tenant.add(saml_idp)


def _genuine(browser: Browser, integration: str) -> tuple[str, dict[str, str]]:
    """A pending sign-in here and the IdP's genuine answer to it (not yet posted)."""
    key = browser.start(integration)
    return browser.sign_in_at_idp(key, "alice", "alice-password")


def _xml(message: str) -> etree._Element:
    return etree.fromstring(base64.b64decode(message))


def _message(root: etree._Element) -> str:
    return base64.b64encode(etree.tostring(root)).decode()


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ASSERTION"
    assert error["constitutional_hash"] == HASH
    assert "access_token" not in response.text


def _last_reason(tenant: SamlTenant) -> str:
    denied = [a for a in tenant.audit() if a["result"] == "denied"]
    assert denied, "the refusal was not audited"
    return str(denied[-1]["outcome"])


def _no_session(tenant: SamlTenant) -> None:
    assert [a for a in tenant.audit() if a["result"] == "success"] == []


# --- signature wrapping ----------------------------------------------------------------------


def _evil(assertion: etree._Element) -> etree._Element:
    """The attacker's assertion: the original's copy for another user, without a signature."""
    evil = copy.deepcopy(assertion)
    for signature in evil.findall("ds:Signature", NS):
        evil.remove(signature)
    evil.set("ID", "_evil-assertion")
    name_id = evil.find("saml:Subject/saml:NameID", NS)
    assert name_id is not None
    name_id.text = "p-mallory"
    return evil


def _assertion(root: etree._Element) -> etree._Element:
    found = root.find("saml:Assertion", NS)
    assert found is not None
    return found


def xsw1(root: etree._Element) -> etree._Element:
    """An unsigned evil response; the signed original inside its copied signature."""
    evil = copy.deepcopy(root)
    evil.set("ID", "_evil-response")
    evil.replace(_assertion(evil), _evil(_assertion(root)))
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    signature.append(copy.deepcopy(root))
    return evil


def xsw2(root: etree._Element) -> etree._Element:
    """An unsigned evil response; the signed original as a detached sibling before it all."""
    evil = copy.deepcopy(root)
    evil.set("ID", "_evil-response")
    evil.replace(_assertion(evil), _evil(_assertion(root)))
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    signature.addprevious(copy.deepcopy(root))
    return evil


def xsw3(root: etree._Element) -> etree._Element:
    """The evil assertion before the signed one."""
    _assertion(root).addprevious(_evil(_assertion(root)))
    return root


def xsw4(root: etree._Element) -> etree._Element:
    """The evil assertion wrapping the signed one."""
    original = _assertion(root)
    evil = _evil(original)
    root.replace(original, evil)
    evil.append(original)
    return root


def xsw5(root: etree._Element) -> etree._Element:
    """The evil assertion keeps the original's signature; the original, unsigned, at the end."""
    original = _assertion(root)
    evil = copy.deepcopy(original)
    name_id = evil.find("saml:Subject/saml:NameID", NS)
    assert name_id is not None
    name_id.text = "p-mallory"
    unsigned = copy.deepcopy(original)
    for signature in unsigned.findall("ds:Signature", NS):
        unsigned.remove(signature)
    root.replace(original, evil)
    root.append(unsigned)
    return root


def xsw6(root: etree._Element) -> etree._Element:
    """The evil assertion keeps the original's signature; the original inside that signature."""
    original = _assertion(root)
    evil = copy.deepcopy(original)
    name_id = evil.find("saml:Subject/saml:NameID", NS)
    assert name_id is not None
    name_id.text = "p-mallory"
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    signature.append(original)
    root.replace(original, evil) if original.getparent() is root else root.append(evil)
    return root


def xsw7(root: etree._Element) -> etree._Element:
    """The signed original hidden in an Extensions element; the evil assertion in its place."""
    original = _assertion(root)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.find("saml:Issuer", NS).addnext(extensions)  # type: ignore[union-attr]
    root.replace(original, _evil(original))
    extensions.append(original)
    return root


def xsw8(root: etree._Element) -> etree._Element:
    """The evil assertion with a copied signature holding the unsigned original in an Object."""
    original = _assertion(root)
    evil = copy.deepcopy(original)
    evil.set("ID", "_evil-assertion")
    name_id = evil.find("saml:Subject/saml:NameID", NS)
    assert name_id is not None
    name_id.text = "p-mallory"
    signature = evil.find("ds:Signature", NS)
    assert signature is not None
    holder = etree.SubElement(signature, f"{{{DS}}}Object")
    unsigned = copy.deepcopy(original)
    for inner in unsigned.findall("ds:Signature", NS):
        unsigned.remove(inner)
    holder.append(unsigned)
    root.replace(original, evil)
    return root


@pytest.mark.parametrize("wrap", [xsw1, xsw2, xsw3, xsw4, xsw5, xsw6, xsw7, xsw8])
def test_signature_wrapping_is_refused(
    tenant: SamlTenant, integration: str, browser: Browser, wrap: Tamper
) -> None:
    action, fields = _genuine(browser, integration)
    fields["SAMLResponse"] = _message(wrap(_xml(fields["SAMLResponse"])))
    _refused(browser.post_to_acs(action, fields))
    assert _last_reason(tenant) in {
        "assertion_count",
        "signature_invalid",
        "signature_wrapping",
        "schema_invalid",
    }
    _no_session(tenant)


# --- signatures ------------------------------------------------------------------------------


def _two_assertions(root: etree._Element) -> etree._Element:
    second = copy.deepcopy(_assertion(root))
    second.set("ID", "_second")
    root.append(second)
    return root


def _no_signature(root: etree._Element) -> etree._Element:
    for signature in root.findall(".//ds:Signature", NS):
        signature.getparent().remove(signature)
    return root


def _empty_signature(root: etree._Element) -> etree._Element:
    for value in root.findall(".//ds:SignatureValue", NS):
        value.text = ""
    return root


def _sha1(root: etree._Element) -> etree._Element:
    for method in root.findall(".//ds:SignatureMethod", NS):
        method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    return root


def _comment_in_name_id(root: etree._Element) -> etree._Element:
    name_id = _assertion(root).find("saml:Subject/saml:NameID", NS)
    assert name_id is not None
    text = name_id.text or ""
    name_id.text = text[:2]
    comment = etree.Comment("")
    name_id.append(comment)
    comment.tail = text[2:]
    return root


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_two_assertions, "assertion_count"),
        (_no_signature, "signature_missing"),
        (_empty_signature, "signature_invalid"),
        (_sha1, "sha1_refused"),
        (_comment_in_name_id, "comment_in_message"),
    ],
)
def test_tampered_signatures_are_refused(
    tenant: SamlTenant, integration: str, browser: Browser, tamper: Tamper, reason: str
) -> None:
    action, fields = _genuine(browser, integration)
    fields["SAMLResponse"] = _message(tamper(_xml(fields["SAMLResponse"])))
    _refused(browser.post_to_acs(action, fields))
    assert _last_reason(tenant) == reason
    _no_session(tenant)


def test_an_assertion_signed_with_an_embedded_attacker_certificate_is_refused(
    tenant: SamlTenant, integration: str, saml_idp: SamlIdp, browser: Browser
) -> None:
    action, fields = _genuine(browser, integration)
    attacker = make_key_pair("attacker")

    def to_mallory(assertion: etree._Element) -> None:
        name_id = assertion.find("saml:Subject/saml:NameID", NS)
        assert name_id is not None
        name_id.text = "p-mallory"

    forged = saml_idp.resign(fields["SAMLResponse"], to_mallory, keys=attacker)
    assert attacker.cert_body[:40] in base64.b64decode(forged).decode()  # the cert is embedded
    fields["SAMLResponse"] = forged
    _refused(browser.post_to_acs(action, fields))
    assert _last_reason(tenant) == "signature_invalid"
    _no_session(tenant)


def test_an_assertion_from_another_tenants_idp_is_refused(
    api: Api,
    platform: httpx.Client,
    unique: str,
    tenant: SamlTenant,
    integration: str,
    saml_idps: list[SamlIdp],
    browser: Browser,
) -> None:
    other = SamlTenant(api, platform, f"xsw-other-{unique}")
    try:
        other.add(saml_idps[1])
    finally:
        other.admin.close()
    action, fields = _genuine(browser, integration)
    request_id = _xml(fields["SAMLResponse"]).get("InResponseTo")
    metadata = httpx.get(f"{api.url}/v1/auth/saml/{integration}/metadata").text
    saml_idps[1].trust(metadata)  # the other tenant's IdP answers our pending request
    fields["SAMLResponse"] = saml_idps[1].response_for(
        "alice", f"urn:acgs:sp:{tenant.slug}:corporate-sso", action, request_id
    )
    _refused(browser.post_to_acs(action, fields))
    assert _last_reason(tenant) in {"signature_invalid", "wrong_issuer"}
    _no_session(tenant)


# --- parsing ----------------------------------------------------------------------------------

BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + ']><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol9;'
    "</samlp:Response>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" '
    'Version="2.0" InResponseTo="_00">&x;</samlp:Response>'
)


@pytest.mark.parametrize("payload", [BOMB, XXE], ids=["xml-bomb", "xxe"])
def test_xml_bombs_and_external_entities_are_refused_fast_and_small(
    api: Api, browser: Browser, payload: str
) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    answer = browser.post_to_acs(
        f"{api.url}/v1/auth/saml/acs",
        {"SAMLResponse": base64.b64encode(payload.encode()).decode()},
    )
    elapsed = time.perf_counter() - started
    _refused(answer)
    assert elapsed < 1.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 50 * 1024
    assert "root:" not in answer.text
    refusals = audit_rows(api, SYSTEM_TENANT_ID)
    assert refusals[-1]["outcome"] == "dtd_forbidden"


def test_an_oversized_response_is_refused_unread(api: Api, browser: Browser) -> None:
    answer = browser.post_to_acs(
        f"{api.url}/v1/auth/saml/acs", {"SAMLResponse": "A" * (300 * 1024)}
    )
    _refused(answer)
    assert audit_rows(api, SYSTEM_TENANT_ID)[-1]["outcome"] == "oversized"


def test_a_triple_des_encrypted_assertion_is_refused(
    tenant: SamlTenant, saml_idps: list[SamlIdp], browser: Browser
) -> None:
    idp = saml_idps[1]
    integration = tenant.add(idp, "Encrypted", want_assertions_encrypted=True)
    action, fields = _genuine(browser, integration)
    request_id = _xml(fields["SAMLResponse"]).get("InResponseTo")
    fields["SAMLResponse"] = idp.response_for(
        "alice",
        f"urn:acgs:sp:{tenant.slug}:encrypted",
        action,
        request_id,
        encrypt=True,
        encryption=xmlsec.constants.TransformDes3Cbc,
    )
    _refused(browser.post_to_acs(action, fields))
    assert _last_reason(tenant) == "weak_encryption"


# --- binding: replay, timing, audience, recipient, solicitation ---------------------------------


def test_a_replayed_response_is_refused(
    api: Api, tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser
) -> None:
    integration = tenant.add(saml_idp, "Replay", allow_idp_initiated=True)
    action, fields = _genuine(browser, integration)
    answer = browser.post_to_acs(action, fields)
    assert answer.status_code == 200, tenant.audit()
    _refused(browser.post_to_acs(action, fields))  # the sign-in request was used
    assert audit_rows(api, SYSTEM_TENANT_ID)[-1]["outcome"] == "unknown_request"
    acs = f"{api.url}/v1/auth/saml/acs"  # unsolicited: the replay cache catches it
    message = saml_idp.response_for("alice", f"urn:acgs:sp:{tenant.slug}:replay", acs, None)
    assert browser.post_to_acs(acs, {"SAMLResponse": message}).status_code == 200
    _refused(browser.post_to_acs(acs, {"SAMLResponse": message}))
    assert _last_reason(tenant) == "replay"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_times(not_before: datetime, not_on_or_after: datetime) -> Callable[[etree._Element], None]:
    def change(assertion: etree._Element) -> None:
        conditions = assertion.find("saml:Conditions", NS)
        assert conditions is not None
        conditions.set("NotBefore", _iso(not_before))
        conditions.set("NotOnOrAfter", _iso(not_on_or_after))
        for data in assertion.iterfind(".//saml:SubjectConfirmationData", NS):
            data.set("NotOnOrAfter", _iso(not_on_or_after))

    return change


def _set_audience(value: str) -> Callable[[etree._Element], None]:
    def change(assertion: etree._Element) -> None:
        for audience in assertion.iterfind(".//saml:Audience", NS):
            audience.text = value

    return change


def _set_recipient(value: str) -> Callable[[etree._Element], None]:
    def change(assertion: etree._Element) -> None:
        for data in assertion.iterfind(".//saml:SubjectConfirmationData", NS):
            data.set("Recipient", value)

    return change


NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        (_set_times(NOW - timedelta(hours=2), NOW - timedelta(hours=1)), {"expired"}),
        (_set_times(NOW + timedelta(hours=1), NOW + timedelta(hours=2)), {"not_yet_valid"}),
        (_set_audience("urn:acgs:sp:somebody-else"), {"wrong_audience"}),
        (_set_recipient("https://evil.test/acs"), {"wrong_recipient"}),
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-recipient"],
)
def test_a_resigned_assertion_with_a_wrong_condition_is_refused(
    tenant: SamlTenant,
    integration: str,
    saml_idp: SamlIdp,
    browser: Browser,
    change: Callable[[etree._Element], None],
    reasons: set[str],
) -> None:
    action, fields = _genuine(browser, integration)
    fields["SAMLResponse"] = saml_idp.resign(fields["SAMLResponse"], change)
    _refused(browser.post_to_acs(action, fields))
    assert _last_reason(tenant) in reasons
    _no_session(tenant)


def test_the_resigning_itself_is_accepted(
    tenant: SamlTenant, integration: str, saml_idp: SamlIdp, browser: Browser
) -> None:
    """The control of the cases above: re-signed without a change, the response is valid."""
    action, fields = _genuine(browser, integration)
    fields["SAMLResponse"] = saml_idp.resign(fields["SAMLResponse"], lambda _: None)
    answer = browser.post_to_acs(action, fields)
    assert answer.status_code == 200, tenant.audit()


def test_a_wrong_destination_is_refused(
    tenant: SamlTenant, integration: str, saml_idp: SamlIdp, browser: Browser
) -> None:
    action, fields = _genuine(browser, integration)
    root = _xml(saml_idp.resign(fields["SAMLResponse"], lambda _: None))
    root.set("Destination", "https://evil.test/acs")
    fields["SAMLResponse"] = _message(root)
    _refused(browser.post_to_acs(action, fields))
    assert _last_reason(tenant) == "wrong_destination"


def test_unsolicited_responses_are_refused_unless_allowed(
    api: Api, tenant: SamlTenant, integration: str, saml_idp: SamlIdp, browser: Browser
) -> None:
    acs = f"{api.url}/v1/auth/saml/acs"
    entity = f"urn:acgs:sp:{tenant.slug}:corporate-sso"
    message = saml_idp.response_for("alice", entity, acs, None)
    _refused(browser.post_to_acs(acs, {"SAMLResponse": message}))
    assert _last_reason(tenant) == "unsolicited_not_allowed"
    answering_nothing_known = saml_idp.response_for("alice", entity, acs, f"_{'0' * 72}")
    _refused(browser.post_to_acs(acs, {"SAMLResponse": answering_nothing_known}))
    assert audit_rows(api, SYSTEM_TENANT_ID)[-1]["outcome"] == "unknown_request"
    _no_session(tenant)


def _conditions_ended(seconds_ago: int) -> Callable[[etree._Element], None]:
    def change(assertion: etree._Element) -> None:
        conditions = assertion.find("saml:Conditions", NS)
        assert conditions is not None
        conditions.set("NotOnOrAfter", _iso(datetime.now(UTC) - timedelta(seconds=seconds_ago)))

    return change


@pytest.mark.parametrize(("skew", "status"), [(120, 200), (10, 401)])
def test_the_integrations_clock_skew_bounds_an_ended_assertion(
    tenant: SamlTenant, saml_idp: SamlIdp, browser: Browser, skew: int, status: int
) -> None:
    integration = tenant.add(saml_idp, f"Skew {skew}", allowed_clock_skew_seconds=skew)
    action, fields = _genuine(browser, integration)
    fields["SAMLResponse"] = saml_idp.resign(fields["SAMLResponse"], _conditions_ended(60))
    assert browser.post_to_acs(action, fields).status_code == status
    if status == 401:
        assert _last_reason(tenant) == "expired"


def test_an_answer_posted_from_another_browser_is_refused(
    api: Api, tenant: SamlTenant, integration: str, browser: Browser
) -> None:
    """Login CSRF: the attacker's own genuine answer, posted by the victim's browser (which
    did not start that sign-in), is refused; the sign-in's cookie goes only to the ACS."""
    action, fields = _genuine(browser, integration)
    cookies = [c for c in browser.client.cookies.jar if c.name.startswith("acgs_saml_")]
    assert [(c.path, c.has_nonstandard_attr("HttpOnly")) for c in cookies] == [
        ("/v1/auth/saml/acs", True)
    ]
    victim = Browser(api)
    try:
        _refused(victim.post_to_acs(action, fields))
    finally:
        victim.close()
    assert _last_reason(tenant) == "browser_mismatch"
    _no_session(tenant)
