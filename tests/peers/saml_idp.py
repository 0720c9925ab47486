"""Real SAML 2.0 identity providers for the tests: pysaml2's `Server` served over HTTP (wsgiref
on a free 127.0.0.1 port, in a thread), each with its own RSA key and self-signed certificate.

Endpoints: `GET /metadata` (the IdP metadata), `GET /sso/redirect` (an AuthnRequest over
HTTP-Redirect, its signature checked against the SP's metadata; answers a small login form),
`POST /sso/login` (checks the password table; answers the auto-post form carrying the signed
SAMLResponse to the SP's ACS), `GET /slo/redirect` (the SP's LogoutRequest, answered with a
signed LogoutResponse by redirect; or the SP's answer to ours). Everything is signed with
RSA-SHA256/SHA-256 (pysaml2 signs with SHA-1 unless told). Assertions can be encrypted for the
SP with AES-256-CBC (the key wrapped with RSA-OAEP), with the python `xmlsec` binding.

SPs are trusted at run time (`trust(metadata_xml)`), so a test creates its integration first and
then hands the IdP the service's SP metadata. `response_for` makes a genuine response without
the browser (for the security tests, which then tamper with it), `resign` re-signs an assertion
the test changed (expired, wrong audience ...) with the IdP's own key, and `logout_url` starts an
IdP-initiated logout. Missing `xmlsec1` is a failure naming the install step, never a skip."""

from __future__ import annotations

import base64
import html
import secrets
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.samlp import SessionIndex
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256
from signxml import SignatureConstructionMethod, XMLSigner

from tests.peers.http import free_port

INSTALL = (
    "xmlsec1 is not installed: run `make system-deps` as root (apt-get install -y "
    "--no-install-recommends xmlsec1); pysaml2 signs with it"
)
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}


@dataclass(frozen=True)
class KeyPair:
    key_pem: str
    cert_pem: str

    @property
    def cert_body(self) -> str:
        """The certificate's base64 body (as metadata and python3-saml settings hold it)."""
        return "".join(line for line in self.cert_pem.splitlines() if "-----" not in line)


def make_key_pair(common_name: str) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return KeyPair(key_pem, cert.public_bytes(serialization.Encoding.PEM).decode())


@dataclass(frozen=True)
class User:
    password: str
    attributes: dict[str, list[str]]


DEFAULT_USERS = {
    "alice": User(
        "alice-password",
        {
            "uid": ["alice"],
            "mail": ["alice@acme.test"],
            "displayName": ["Alice Liddell"],
            "groups": ["engineers", "admins"],
            "department": ["Finance"],
        },
    ),
    "bob": User(
        "bob-password",
        {"uid": ["bob"], "mail": ["bob@acme.test"], "displayName": ["Bob"], "groups": ["staff"]},
    ),
}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread a connection: a browser's idle pre-opened connection (Chromium keeps one)
    must not hold up every other client of the IdP, as a one-connection-at-a-time server would."""

    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        del format, args


def _form(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
        for k, v in fields.items()
    )
    return (
        f'<html><body onload="document.forms[0].submit()"><form method="post" '
        f'action="{html.escape(action)}">{inputs}<noscript><button>Continue</button></noscript>'
        "</form></body></html>"
    )


@dataclass
class SamlIdp:
    """One running IdP. `encrypt_assertions`, `sign_response` change what it sends."""

    url: str
    keys: KeyPair
    users: dict[str, User]
    server: Any  # saml2.server.Server
    encrypt_assertions: bool = False
    sign_response: bool = True
    sp_certs: dict[str, str] = field(default_factory=dict)  # SP entity id -> cert PEM
    logouts: list[dict[str, Any]] = field(default_factory=list)
    _pending: dict[str, tuple[Any, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def entity_id(self) -> str:
        return f"{self.url}/metadata"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/metadata"

    @property
    def metadata_xml(self) -> str:

        return str(entity_descriptor(self.server.config))

    # --- configuration -------------------------------------------------------------------------

    def trust(self, sp_metadata_xml: str, *, sp_cert_pem: str | None = None) -> None:
        """Accept AuthnRequests from the SP of this metadata (and encrypt for `sp_cert_pem`)."""
        root = etree.fromstring(sp_metadata_xml.encode())
        entity_id = root.get("entityID")
        with self._lock:
            self.server.metadata.load("inline", sp_metadata_xml)
            if sp_cert_pem:
                self.sp_certs[entity_id] = sp_cert_pem

    # --- responses -----------------------------------------------------------------------------

    def response_for(
        self,
        username: str,
        sp_entity_id: str,
        acs_url: str,
        in_response_to: str | None,
        *,
        attributes: dict[str, list[str]] | None = None,
        name_id: str | None = None,
        sign_response: bool | None = None,
        sign_assertion: bool = True,
        encrypt: bool | None = None,
        encryption: Any = xmlsec.constants.TransformAes256Cbc,
    ) -> str:
        """A genuine SAMLResponse (base64) for `username`, as the IdP would send it."""

        user = self.users[username]
        encrypt = self.encrypt_assertions if encrypt is None else encrypt
        sign_response = (self.sign_response if sign_response is None else sign_response) and (
            not encrypt
        )
        with self._lock:
            response = self.server.create_authn_response(
                identity=attributes if attributes is not None else user.attributes,
                in_response_to=in_response_to,
                destination=acs_url,
                sp_entity_id=sp_entity_id,
                name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id or f"p-{username}"),
                authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
                sign_response=sign_response,
                sign_assertion=sign_assertion,
                sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )
        xml = str(response).encode()
        if encrypt:
            xml = self._encrypt(xml, self.sp_certs[sp_entity_id], encryption)
        return base64.b64encode(xml).decode()

    def _encrypt(
        self, xml: bytes, cert_pem: str, method: Any = xmlsec.constants.TransformAes256Cbc
    ) -> bytes:
        root = etree.fromstring(xml)
        assertion = root.find("saml:Assertion", NS)
        assert assertion is not None
        wrapper = etree.Element(f"{{{SAML}}}EncryptedAssertion", nsmap={"saml": SAML})
        assertion.addprevious(wrapper)
        wrapper.append(assertion)
        manager = xmlsec.KeysManager()
        manager.add_key(
            xmlsec.Key.from_memory(cert_pem.encode(), xmlsec.constants.KeyDataFormatCertPem)
        )
        template = xmlsec.template.encrypted_data_create(
            root, method, type=xmlsec.constants.TypeEncElement, ns="xenc"
        )
        xmlsec.template.encrypted_data_ensure_cipher_value(template)
        key_info = xmlsec.template.encrypted_data_ensure_key_info(template, ns="dsig")
        encrypted_key = xmlsec.template.add_encrypted_key(
            key_info, xmlsec.constants.TransformRsaOaep
        )
        xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
        context = xmlsec.EncryptionContext(manager)
        aes = method is xmlsec.constants.TransformAes256Cbc
        context.key = xmlsec.Key.generate(
            xmlsec.constants.KeyDataAes if aes else xmlsec.constants.KeyDataDes,
            256 if aes else 192,
            xmlsec.constants.KeyDataTypeSession,
        )
        context.encrypt_xml(template, assertion)
        return bytes(etree.tostring(root))

    def resign(
        self,
        message: str,
        change: Callable[[etree._Element], None],
        *,
        keys: KeyPair | None = None,
    ) -> str:
        """`message` (a signed response) changed by `change` (given the Assertion) and signed
        again with this IdP's key (or `keys`: an attacker's), the assertion only, RSA-SHA256,
        exclusive c14n, the signing certificate embedded in KeyInfo."""
        keys = keys or self.keys

        root = etree.fromstring(base64.b64decode(message))
        for signature in root.findall(".//ds:Signature", NS):
            signature.getparent().remove(signature)
        assertion = root.find("saml:Assertion", NS)
        assert assertion is not None
        change(assertion)
        placeholder = etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
        assertion.find("saml:Issuer", NS).addnext(placeholder)  # type: ignore[union-attr]
        signer = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm="rsa-sha256",
            digest_algorithm="sha256",
            c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
        )
        # The whole document is signed (the signature lands on the placeholder): an assertion
        # signed alone and put back would have its signature's prefixes rewritten by lxml.
        signed = signer.sign(
            root,
            key=keys.key_pem.encode(),
            cert=keys.cert_pem.encode(),
            reference_uri=assertion.get("ID"),
        )
        return base64.b64encode(etree.tostring(signed)).decode()

    # --- logout started here -------------------------------------------------------------------

    def logout_url(self, sp_entity_id: str, sp_slo_url: str, name_id: str,
                   session_index: str | None = None) -> str:  # fmt: skip
        """An IdP-initiated LogoutRequest to the SP (signed redirect URL)."""

        with self._lock:
            _, request = self.server.create_logout_request(
                sp_slo_url,
                self.entity_id,
                name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
                session_indexes=[SessionIndex(session_index)] if session_index else None,
                sign=False,
            )
            info = self.server.apply_binding(
                BINDING_HTTP_REDIRECT, str(request), sp_slo_url, relay_state="idp-logout",
                sigalg=SIG_RSA_SHA256,
                sign=True,
            )  # fmt: skip
        return str(dict(info["headers"])["Location"])

    # --- the WSGI application ------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> list[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            if method == "GET" and path == "/metadata":
                return _answer(start, "200 OK", self.metadata_xml, "application/samlmetadata+xml")
            if method == "GET" and path == "/sso/redirect":
                return self._sso(start, query)
            if method == "POST" and path == "/sso/login":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                return self._login(start, form)
            if method == "GET" and path == "/slo/redirect":
                return self._slo(start, query)
        except Exception as exc:  # noqa: BLE001 - a refused message is a 400 page, as IdPs do
            return _answer(start, "400 Bad Request", f"refused: {type(exc).__name__}: {exc}")
        return _answer(start, "404 Not Found", "not found")

    def _sso(self, start: Callable[..., Any], query: dict[str, str]) -> list[bytes]:

        with self._lock:
            parsed = self.server.parse_authn_request(
                query["SAMLRequest"],
                BINDING_HTTP_REDIRECT,
                relay_state=query.get("RelayState"),
                sigalg=query.get("SigAlg"),
                signature=query.get("Signature"),
            )
        if parsed is None:
            return _answer(start, "400 Bad Request", "refused: the AuthnRequest is not valid")
        key = secrets.token_urlsafe(16)
        self._pending[key] = (parsed.message, query.get("RelayState", ""))
        page = (
            '<html><body><form method="post" action="/sso/login">'
            f'<input type="hidden" name="key" value="{key}"/>'
            '<input name="username"/><input name="password" type="password"/>'
            "<button>Sign in</button></form></body></html>"
        )
        return _answer(start, "200 OK", page)

    def _login(self, start: Callable[..., Any], form: dict[str, str]) -> list[bytes]:
        pending = self._pending.get(form.get("key", ""))
        user = self.users.get(form.get("username", ""))
        if pending is None:
            return _answer(start, "400 Bad Request", "refused: unknown login")
        if user is None or not secrets.compare_digest(user.password, form.get("password", "")):
            return _answer(start, "401 Unauthorized", "the user name or password is wrong")
        del self._pending[form["key"]]
        request, relay_state = pending
        acs = request.assertion_consumer_service_url
        message = self.response_for(form["username"], request.issuer.text, acs, request.id)
        return _answer(start, "200 OK", _form(acs, {"SAMLResponse": message,
                                                    "RelayState": relay_state}))  # fmt: skip

    def _slo(self, start: Callable[..., Any], query: dict[str, str]) -> list[bytes]:

        if "SAMLResponse" in query:  # the SP's answer to our LogoutRequest
            with self._lock:
                answer = self.server.parse_logout_request_response(
                    query["SAMLResponse"], BINDING_HTTP_REDIRECT
                )
            self.logouts.append({"answered": answer.response.in_response_to})
            return _answer(start, "200 OK", "logged out")
        with self._lock:
            request = self.server.parse_logout_request(
                query["SAMLRequest"],
                BINDING_HTTP_REDIRECT,
                relay_state=query.get("RelayState"),
                sigalg=query.get("SigAlg"),
                signature=query.get("Signature"),
            )
            message = request.message
            self.logouts.append(
                {
                    "name_id": message.name_id.text,
                    "session_indexes": [i.text for i in message.session_index],
                }
            )
            response = self.server.create_logout_response(message, [BINDING_HTTP_REDIRECT],
                                                          sign=False)  # fmt: skip
            destination = self.server.metadata.single_logout_service(
                message.issuer.text, BINDING_HTTP_REDIRECT, "spsso"
            )[0]["location"]
            info = self.server.apply_binding(
                BINDING_HTTP_REDIRECT, str(response), destination,
                relay_state=query.get("RelayState", ""), response=True, sigalg=SIG_RSA_SHA256,
                sign=True,
            )  # fmt: skip
        location = dict(info["headers"])["Location"]
        start("303 See Other", [("Location", location), ("Content-Length", "0")])
        return [b""]


def _answer(
    start: Callable[..., Any], status: str, body: str, media: str = "text/html"
) -> list[bytes]:
    data = body.encode()
    start(status, [("Content-Type", f"{media}; charset=utf-8"),
                   ("Content-Length", str(len(data)))])  # fmt: skip
    return [data]


def _config(url: str, folder: Path, keys: KeyPair) -> Any:

    key_file, cert_file = folder / "idp.key", folder / "idp.crt"
    key_file.write_text(keys.key_pem)
    cert_file.write_text(keys.cert_pem)
    config = IdPConfig()
    config.load(
        {
            "entityid": f"{url}/metadata",
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(f"{url}/sso/redirect", BINDING_HTTP_REDIRECT)],
                        "single_logout_service": [(f"{url}/slo/redirect", BINDING_HTTP_REDIRECT)],
                    },
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                    "want_authn_requests_signed": True,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 5},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_BASIC,
                        }
                    },
                }
            },
            "key_file": str(key_file),
            "cert_file": str(cert_file),
            "xmlsec_binary": shutil.which("xmlsec1"),
            "signing_algorithm": SIG_RSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "metadata": {},
            "accepted_time_diff": 60,
        }
    )
    return config


@contextmanager
def running_idp(
    folder: Path, users: dict[str, User] | None = None, *, port: int | None = None
) -> Iterator[SamlIdp]:
    """An IdP on 127.0.0.1 (a free port unless given) until the block ends."""
    if shutil.which("xmlsec1") is None:
        pytest.fail(INSTALL)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    keys = make_key_pair(f"IdP {port}")
    idp = SamlIdp(
        url, keys, dict(users or DEFAULT_USERS), Server(config=_config(url, folder, keys))
    )
    httpd: WSGIServer = make_server(
        "127.0.0.1", port, idp, server_class=_ThreadingServer, handler_class=_Quiet
    )
    thread = threading.Thread(target=httpd.serve_forever, name=f"saml-idp-{port}", daemon=True)
    thread.start()
    try:
        yield idp
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def saml_idps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SamlIdp]]:
    """Two IdPs (a tenant may trust several; another tenant's IdP must not be trusted)."""
    with (
        running_idp(tmp_path_factory.mktemp("idp-a")) as first,
        running_idp(tmp_path_factory.mktemp("idp-b")) as second,
    ):
        yield [first, second]


@pytest.fixture(scope="session")
def saml_idp(saml_idps: list[SamlIdp]) -> SamlIdp:
    return saml_idps[0]


def main(argv: list[str] | None = None) -> int:
    """Serve a test IdP by hand (the worked example of docs/identity-saml-oidc.md):
    `python -m tests.peers.saml_idp --port 8900 --sp-metadata URL [--sp-metadata URL ...]`."""
    import argparse  # noqa: PLC0415 - only the command line needs it
    import tempfile  # noqa: PLC0415
    import time  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m tests.peers.saml_idp")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--sp-metadata", action="append", default=[], metavar="URL")
    args = parser.parse_args(argv)
    with running_idp(Path(tempfile.mkdtemp(prefix="acgs-idp-")), port=args.port) as idp:
        for url in args.sp_metadata:
            idp.trust(httpx.get(url, timeout=10).text)
        print(f"IdP metadata: {idp.metadata_url}", flush=True)
        for name, user in idp.users.items():
            print(f"user {name} / {user.password}: {user.attributes}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
