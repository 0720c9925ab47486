"""The connectivity test of a SAML identity provider: its metadata (fetched from
`idp_metadata_url`, or given inline) parsed with defusedxml (no entity expansion, no external
references), its single sign-on endpoint found, and its signing certificates checked for validity
now. Without metadata, the configured certificates are checked the same way.

Steps as reported: connection_established (metadata fetched, or given), authentication_successful
(a signing certificate valid now), test_query_executed (metadata parsed, with an SSO endpoint).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

import httpx
from cryptography import x509
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from domain.integration.probe import ProbeFailure, ProbeResult

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
_PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)


def certificates_valid_now(ders: list[bytes], now: datetime) -> int:
    """How many of the certificates are valid at `now` (unparseable ones count as invalid)."""
    valid = 0
    for der in ders:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            valid += 1
    return valid


def check_idp(config: dict[str, Any], *, now: datetime | None = None) -> ProbeResult:
    started = time.perf_counter()
    moment = now or datetime.now(UTC)

    def result(**kw: Any) -> ProbeResult:
        return ProbeResult(latency_ms=round((time.perf_counter() - started) * 1000), **kw)

    xml = config.get("idp_metadata_xml")
    if config.get("idp_metadata_url"):
        try:
            with httpx.Client(
                timeout=float(config.get("timeout_seconds", 5)), follow_redirects=False
            ) as client:
                response = client.get(str(config["idp_metadata_url"]))
        except httpx.HTTPError as exc:
            return result(
                connection_established=False,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.UNREACHABLE,
                message=f"cannot fetch the IdP metadata ({type(exc).__name__})",
            )
        if response.status_code != 200:
            return result(
                connection_established=True,
                authentication_successful=False,
                test_query_executed=False,
                failure=ProbeFailure.QUERY_FAILED,
                message=f"the IdP metadata URL answered HTTP {response.status_code}",
            )
        xml = response.text
    if xml is None:
        certs = [_pem_der(p) for p in config.get("idp_signing_certificates", [])]
        ok = certificates_valid_now([c for c in certs if c], moment) > 0
        return result(
            connection_established=True,
            authentication_successful=ok,
            test_query_executed=ok,
            failure=None if ok else ProbeFailure.AUTH_FAILED,
            message="ok" if ok else "no configured signing certificate is valid now",
        )
    return _check_metadata(str(xml), config, moment, result)


def _check_metadata(
    xml: str, config: dict[str, Any], now: datetime, result: Callable[..., ProbeResult]
) -> ProbeResult:
    try:
        root: Element = ElementTree.fromstring(xml)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return result(
            connection_established=True,
            authentication_successful=False,
            test_query_executed=False,
            failure=ProbeFailure.QUERY_FAILED,
            message="the IdP metadata is not well-formed (or uses forbidden XML constructs)",
        )
    idp = root.find(f"{MD}IDPSSODescriptor")
    sso = idp.find(f"{MD}SingleSignOnService") if idp is not None else None
    expected = config.get("idp_entity_id")
    if idp is None or sso is None or (expected and root.get("entityID") != expected):
        return result(
            connection_established=True,
            authentication_successful=False,
            test_query_executed=False,
            failure=ProbeFailure.QUERY_FAILED,
            message="the metadata has no IdP single sign-on endpoint (or another entityID)",
        )
    ders = []
    for descriptor in idp.findall(f"{MD}KeyDescriptor"):
        if descriptor.get("use", "signing") != "signing":
            continue
        for text in descriptor.iter(f"{DS}X509Certificate"):
            try:
                ders.append(base64.b64decode("".join((text.text or "").split())))
            except ValueError:
                continue
    if certificates_valid_now(ders, now) == 0:
        return result(
            connection_established=True,
            authentication_successful=False,
            test_query_executed=True,
            failure=ProbeFailure.AUTH_FAILED,
            message="no signing certificate of the IdP is valid now",
        )
    return result(
        connection_established=True, authentication_successful=True, test_query_executed=True
    )


def _pem_der(pem: str) -> bytes | None:
    match = _PEM_RE.search(pem)
    if not match:
        return None
    try:
        return base64.b64decode("".join(match.group(1).split()))
    except ValueError:
        return None
