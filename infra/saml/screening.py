"""The checks a SAMLResponse passes before any signature is looked at: bounded size, base64,
no DTD (so no entity expansion and no external entity: XML bombs and XXE are refused unread),
no comments or processing instructions (a comment inside a NameID splits what the signature
covers from what a naive reader takes), no SHA-1 in any signature or digest, and an encrypted
assertion only with AES-256. Everything here is linear in the input and touches no network.

`screen` returns the parsed document and the facts read (unverified) from it that choose how to
validate (`domain.saml.Screened`): the root's `InResponseTo`, the audiences, the issuer. A
message that is not XML, is too large or has a DTD is refused at once; the other refusals
(comments, SHA-1, weak encryption) are carried in `Screened.refusal`, raised once the message's
tenant is known so that the refusal is audited in that tenant.
"""

from __future__ import annotations

import base64
import binascii
import re

from lxml import etree

from domain.saml import SamlRejected, Screened

MAX_RESPONSE_CHARS = 256 * 1024  # the base64 form, as posted
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS, "xenc": XENC}
AES_256 = frozenset(
    {"http://www.w3.org/2001/04/xmlenc#aes256-cbc", "http://www.w3.org/2009/xmlenc11#aes256-gcm"}
)
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_SHA1 = re.compile(r"sha1$|#sha1$|rsa-sha1$|dsa-sha1$|hmac-sha1$", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
    )


def decode(message: str, *, limit: int = MAX_RESPONSE_CHARS) -> bytes:
    if len(message) > limit:
        raise SamlRejected("oversized", f"{len(message)} characters, at most {limit}")
    try:
        return base64.b64decode("".join(message.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SamlRejected("malformed", "not base64") from None


def parse(xml: bytes) -> etree._Element:
    """The document, parsed without a DTD (SamlRejected when it has one or is not XML)."""
    if _DTD.search(xml):
        raise SamlRejected("dtd_forbidden", "a DOCTYPE or ENTITY declaration")
    try:
        return etree.fromstring(xml, parser=_parser())
    except etree.XMLSyntaxError:
        raise SamlRejected("malformed", "not well-formed XML") from None


def refusal_of(root: etree._Element) -> SamlRejected | None:
    """What makes a well-formed message unacceptable whatever its signature says."""
    for node in root.iter(etree.Comment, etree.ProcessingInstruction):
        kind = "comment" if isinstance(node, etree._Comment) else "processing instruction"
        return SamlRejected("comment_in_message", f"a {kind} inside the message")
    for tag in ("SignatureMethod", "DigestMethod"):
        for method in root.iterfind(f".//ds:{tag}", NS):
            if _SHA1.search(method.get("Algorithm", "")):
                return SamlRejected("sha1_refused", f"a SHA-1 {tag}")
    for encrypted in root.iterfind("saml:EncryptedAssertion/xenc:EncryptedData", NS):
        method = encrypted.find("xenc:EncryptionMethod", NS)
        if method is None or method.get("Algorithm") not in AES_256:
            return SamlRejected("weak_encryption", "the assertion is not encrypted with AES-256")
    return None


def parse_checked(xml: bytes) -> etree._Element:
    """`parse` and `refusal_of` at once (for messages that name no tenant before)."""
    root = parse(xml)
    refusal = refusal_of(root)
    if refusal is not None:
        raise refusal
    return root


def screen(message: str) -> Screened:
    xml = decode(message)
    root = parse(xml)
    if root.tag != f"{{{SAMLP}}}Response":
        raise SamlRejected("malformed", "not a samlp:Response")
    audiences = tuple(
        (a.text or "").strip()
        for a in root.iterfind(
            "saml:Assertion/saml:Conditions/saml:AudienceRestriction/saml:Audience", NS
        )
    )
    issuer = root.findtext("saml:Issuer", namespaces=NS)
    return Screened(
        xml=xml,
        root=root,
        in_response_to=root.get("InResponseTo"),
        audiences=audiences,
        issuer=issuer.strip() if issuer else None,
        refusal=refusal_of(root),
    )
