"""The OpenID Connect presets are configuration: each fills in an ordinary `oidc` integration
configuration that the integration's schema accepts, with its provider's issuer shape."""

from __future__ import annotations

import pytest

from domain.integration.oidc_presets import PRESETS, MissingPresetValue, preset_config
from domain.integration.schemas import OIDC
from infra.oidc.discovery import discovery_url

VALUES = {"domain": "acme.example.com", "tenant": "0f1e2d3c", "groups_claim": "https://acme/g"}
EXPECTED_DISCOVERY = {
    "okta": "https://acme.example.com/oauth2/default/.well-known/openid-configuration",
    "auth0": "https://acme.example.com/.well-known/openid-configuration",
    "azure_ad": "https://login.microsoftonline.com/0f1e2d3c/v2.0/.well-known/openid-configuration",
    "google": "https://accounts.google.com/.well-known/openid-configuration",
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_is_a_valid_oidc_configuration(preset: str) -> None:
    config = preset_config(preset, client_id="acgs", client_secret="s3cret", **VALUES)
    complete = OIDC.validate(config, production=True)
    assert discovery_url(complete) == EXPECTED_DISCOVERY[preset]
    assert "openid" in complete["scopes"]
    assert complete["allowed_id_token_algorithms"] == ["RS256"]
    assert set(complete["claim_map"]) >= {"username", "email", "groups"}


def test_the_auth0_groups_claim_is_the_namespaced_one_given() -> None:
    config = preset_config("auth0", client_id="acgs", domain="acme.eu.auth0.com",
                           groups_claim="https://acme.example/groups")  # fmt: skip
    assert config["issuer"] == "https://acme.eu.auth0.com/"
    assert config["claim_map"]["groups"] == "https://acme.example/groups"


def test_a_missing_placeholder_is_named() -> None:
    with pytest.raises(MissingPresetValue, match="tenant="):
        preset_config("azure_ad", client_id="acgs")
