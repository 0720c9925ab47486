"""A real OpenID provider for the test session: `oidc-provider` (npm, pinned in
tests/peers/oidc_provider/package-lock.json, installed by `make oidc-provider`, which
`make test` runs) under Node on a free 127.0.0.1 port, stopped by its PID at the end.

`tests/peers/oidc_provider/provider.mjs` is configured from a JSON file written here: an RS256
signing key made here (the tests hold it, so they can mint ID tokens the provider's own key
signs, for the refusals it would never mint itself), three clients (`acgs-web` confidential,
`acgs-spa` public, `acgs-other` confidential: a second client of the same provider), PKCE S256
required of all, refresh tokens, revocation, introspection, and the accounts below with a login
form that checks their passwords. The clients are native-type with loopback redirect URIs, so
the provider accepts the callback of an API on any 127.0.0.1 port (RFC 8252, section 7.3).

A missing node, npm or package is a failure naming the install step, never a skip."""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from tests.peers.http import free_port

HERE = Path(__file__).parent / "oidc_provider"
INSTALL = (
    "the test OpenID provider is not installed: run `make oidc-provider` (needs node and npm: "
    "apt-get install -y --no-install-recommends nodejs npm; then npm ci in "
    "tests/peers/oidc_provider)"
)
CALLBACK = "http://127.0.0.1/v1/auth/oidc/callback"
GOVERNANCE_SCOPE = "governance:admin"


@dataclass(frozen=True)
class Account:
    sub: str
    password: str
    display_name: str
    email: str
    groups: tuple[str, ...]
    scopes: tuple[str, ...] = ()


ACCOUNTS = {
    # the subject is not the user name: users are keyed on (issuer, subject)
    "alice": Account(
        "u-1001", "alice-oidc-pw", "Alice Example", "alice@acme.test",
        ("executives", "auditors"), (GOVERNANCE_SCOPE,),
    ),
    "bob": Account("u-1002", "bob-oidc-pw", "Bob Example", "bob@acme.test", ("auditors",)),
    # the same email as alice, another person: an email never identifies a user
    "mallory": Account("u-6666", "mallory-oidc-pw", "Mallory", "alice@acme.test", ()),
}  # fmt: skip


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str | None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "client_id": self.client_id,
            "application_type": "native",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "id_token_signed_response_alg": "RS256",
        }
        if self.client_secret is None:
            meta["token_endpoint_auth_method"] = "none"
        else:
            meta["client_secret"] = self.client_secret
            meta["token_endpoint_auth_method"] = "client_secret_basic"
        return meta


@dataclass
class OidcProvider:
    issuer: str
    key: RSAKey  # the provider's signing key (private)
    web: Client
    spa: Client
    other: Client
    accounts: dict[str, Account] = field(default_factory=lambda: dict(ACCOUNTS))

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(INSTALL)
    return found


def _config(port: int, key: RSAKey, clients: list[Client], id_token_ttl: int) -> dict[str, Any]:
    return {
        "port": port,
        "issuer": f"http://127.0.0.1:{port}",
        "jwks": {"keys": [key.as_dict(private=True)]},
        "cookie_keys": [secrets.token_hex(16)],
        "clients": [c.metadata() for c in clients],
        "extra_scopes": [GOVERNANCE_SCOPE],
        "accounts": {
            name: {
                "sub": a.sub,
                "password": a.password,
                "display_name": a.display_name,
                "email": a.email,
                "groups": list(a.groups),
                "scopes": list(a.scopes),
            }
            for name, a in ACCOUNTS.items()
        },
        "id_token_ttl": id_token_ttl,
    }


@contextmanager
def running_provider(work: Path, *, id_token_ttl: int = 3600) -> Iterator[OidcProvider]:
    """The provider with its files under `work`, stopped by its PID afterwards (used by the
    session fixture and the benchmark)."""
    node = _binary("node")
    if not (HERE / "node_modules" / "oidc-provider" / "package.json").is_file():
        pytest.fail(INSTALL)
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True)
    key.ensure_kid()
    clients = [
        Client("acgs-web", "web-" + secrets.token_hex(16)),
        Client("acgs-spa", None),
        Client("acgs-other", "other-" + secrets.token_hex(16)),
    ]
    port = free_port()
    (work / "provider.json").write_text(json.dumps(_config(port, key, clients, id_token_ttl)))
    log = work / "provider.log"
    out = log.open("wb")
    process = subprocess.Popen(
        [node, str(HERE / "provider.mjs"), str(work / "provider.json")],
        stdout=subprocess.PIPE,
        stderr=out,
        cwd=HERE,
    )
    try:
        issuer = _wait_ready(process, log)
        yield OidcProvider(issuer, key, *clients)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        out.close()


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> str:
    assert process.stdout is not None
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout=60)
    text = line[0].decode().strip() if line else ""
    if not text.startswith("READY "):
        process.kill()
        pytest.fail(f"the OpenID provider did not start: {text!r}\n{log.read_text()[-2000:]}")
    return text.removeprefix("READY ")


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    with running_provider(Path(tmp_path_factory.mktemp("oidc-provider"))) as provider:
        yield provider


def main() -> None:
    """`python -m tests.peers.oidc_provider [DIR]`: run the test provider until Ctrl-C and print
    what an integration needs (docs/identity-saml-oidc.md walks through it)."""
    import sys  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="acgs-idp-"))
    work.mkdir(parents=True, exist_ok=True)
    with running_provider(work) as provider:
        print(f"issuer:         {provider.issuer}")
        print(f"confidential:   client_id {provider.web.client_id}  "
              f"client_secret {provider.web.client_secret}")  # fmt: skip
        print(f"public (PKCE):  client_id {provider.spa.client_id}")
        for name, account in provider.accounts.items():
            print(f"account:        {name} / {account.password}  groups {list(account.groups)}")
        print("Ctrl-C stops it.", flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
