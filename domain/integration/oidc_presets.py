"""Presets for well-known OpenID Connect providers: configuration only, no code per provider.

Each preset knows its provider's issuer shape (the discovery document lives under it), the
scopes to ask for, which claim holds the user name and the groups, and the signature algorithm
its ID tokens use. `preset_config` fills one in; the result is an ordinary `oidc` integration
configuration (POST it as `config`), so everything else about the integration stays the same.

- Okta: the authorization server's issuer, `https://{domain}/oauth2/default` (or a custom
  server's); the `groups` scope and claim need a groups claim on the authorization server.
- Auth0: `https://{domain}/` (with the trailing slash); groups come from a namespaced custom
  claim that an Auth0 Action adds (`groups_claim`, e.g. `https://acme.example/groups`).
- Azure AD (Entra ID): `https://login.microsoftonline.com/{tenant}/v2.0`; `groups` holds the
  groups' object ids once "groups claims" is turned on in the app registration.
- Google: `https://accounts.google.com`; no groups claim: the hosted domain (`hd`) of a
  Workspace account is the value role mappings match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OidcPreset:
    issuer: str  # with {placeholders}
    scopes: tuple[str, ...]
    claim_map: dict[str, str] = field(default_factory=dict)
    algorithms: tuple[str, ...] = ("RS256",)


PRESETS: dict[str, OidcPreset] = {
    "okta": OidcPreset(
        "https://{domain}/oauth2/default",
        ("openid", "profile", "email", "groups"),
        {"username": "preferred_username", "email": "email", "groups": "groups", "name": "name"},
    ),
    "auth0": OidcPreset(
        "https://{domain}/",
        ("openid", "profile", "email"),
        {"username": "nickname", "email": "email", "groups": "{groups_claim}", "name": "name"},
    ),
    "azure_ad": OidcPreset(
        "https://login.microsoftonline.com/{tenant}/v2.0",
        ("openid", "profile", "email"),
        {"username": "preferred_username", "email": "email", "groups": "groups", "name": "name"},
    ),
    "google": OidcPreset(
        "https://accounts.google.com",
        ("openid", "profile", "email"),
        {"username": "email", "email": "email", "groups": "hd", "name": "name"},
    ),
}


class MissingPresetValue(ValueError):
    """A placeholder of the preset (domain, tenant, groups_claim) was not given."""


def preset_config(
    preset: str, *, client_id: str, client_secret: str | None = None, **values: str
) -> dict[str, Any]:
    """An `oidc` integration configuration for `preset` (a key of PRESETS), its placeholders
    filled from `values` (e.g. `domain="acme.okta.com"`, `tenant="<directory id>"`)."""
    chosen = PRESETS[preset]

    def fill(text: str) -> str:
        try:
            return text.format(**values)
        except KeyError as missing:
            raise MissingPresetValue(f"the {preset} preset needs {missing.args[0]}=") from None

    config: dict[str, Any] = {
        "issuer": fill(chosen.issuer),
        "client_id": client_id,
        "scopes": list(chosen.scopes),
        "claim_map": {k: fill(v) for k, v in chosen.claim_map.items()},
        "allowed_id_token_algorithms": list(chosen.algorithms),
    }
    if client_secret is not None:
        config["client_secret"] = client_secret
    return config
