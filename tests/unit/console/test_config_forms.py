"""The integration forms built from the configuration schemas: one input per field of every
type, chosen by its kind; secrets never filled in; a form read back into the configuration the
schema accepts; and the landing path of a console sign-in never leaving the console."""

from __future__ import annotations

from typing import Any

import pytest

from api.console.config_form import (
    config_of,
    defaults_of,
    field_of,
    form_fields,
    label_of,
    values_of,
)
from api.console.landing import console_path
from domain.errors import ValidationFailed
from domain.integration.fields import Kind
from domain.integration.schemas import LDAP, SAML, SCHEMAS, SIEM
from domain.integration.values import IntegrationType

PEM_A = "-----BEGIN CERTIFICATE-----\nMIIBaaaa\n-----END CERTIFICATE-----"
PEM_B = "-----BEGIN CERTIFICATE-----\nMIIBbbbb\n-----END CERTIFICATE-----"


@pytest.mark.parametrize("kind", list(IntegrationType))
def test_every_schema_field_has_one_input_of_its_kind(kind: IntegrationType) -> None:
    schema = SCHEMAS[kind]
    fields = form_fields(schema)
    assert [f.name for f in fields] == [s.name for s in schema.fields]
    for field, spec in zip(fields, schema.fields, strict=True):
        assert field.required == spec.required
        assert field.hint == spec.description
        assert field.secret == spec.secret, field.name
        expected = {
            Kind.BOOL: {"checkbox"},
            Kind.INT: {"number"},
            Kind.STRING_LIST: {"lines", "pems"},
            Kind.STRING_MAP: {"map"},
            Kind.STRING: {"text", "select", "area", "password", "secret_area"},
        }[spec.kind]
        assert field.widget in expected, (field.name, field.widget)
        if spec.kind is Kind.STRING_MAP:
            assert field.keys == spec.map_keys


def test_widgets_follow_what_the_field_holds() -> None:
    widgets = {f.name: f.widget for f in form_fields(SAML)}
    assert widgets["idp_metadata_xml"] == "area"  # a document
    assert widgets["sp_private_key"] == "secret_area"  # a multi-line secret
    assert widgets["idp_signing_certificates"] == "pems"
    assert widgets["allowed_redirect_urls"] == "lines"
    assert widgets["attribute_map"] == "map"
    assert widgets["want_assertions_signed"] == "checkbox"
    assert widgets["session_seconds"] == "number"
    ldap = {f.name: f.widget for f in form_fields(LDAP)}
    assert ldap["bind_password"] == "password"
    assert ldap["ca_cert_pem"] == "area"
    siem = {f.name: f for f in form_fields(SIEM)}
    assert siem["kind"].widget == "select"
    assert "splunk_hec" in siem["kind"].choices


def test_labels_read_as_words() -> None:
    assert label_of("idp_sso_url") == "IdP SSO URL"
    assert label_of("bind_dn") == "Bind DN"
    assert label_of("ca_cert_pem") == "CA cert PEM"
    assert label_of("tls_verify") == "TLS verify"


def _form(values: dict[str, str], **more: str) -> dict[str, str]:
    return {**values, **more}


def test_a_new_ldap_form_reads_back_into_a_valid_configuration() -> None:
    values = defaults_of(LDAP)
    assert values["user_search_filter"] == "(uid={username})"
    assert values["tls_verify"] == "on"
    assert values["start_tls"] == ""
    assert values["attribute_map.groups"] == "memberOf"
    assert "bind_password" not in values
    form = _form(
        values,
        server_url="ldaps://ldap.acme.test:636",
        base_dn="dc=acme,dc=test",
        bind_dn="cn=svc,dc=acme,dc=test",
        bind_password="s3cret",
        ca_cert_pem=PEM_A.replace("\n", "\r\n") + "\r\n",
    )
    config = config_of(LDAP, form, editing=False)
    assert config["tls_verify"] is True
    assert config["start_tls"] is False
    assert config["connection_pool_size"] == 10
    assert config["ca_cert_pem"] == PEM_A + "\n"
    assert config["attribute_map"]["email"] == "mail"
    assert config["bind_password"] == "s3cret"
    LDAP.validate(config, production=False)  # the schema accepts what the form made


def test_the_stored_configuration_fills_the_edit_form_without_its_secrets() -> None:
    stored: dict[str, Any] = {
        "idp_metadata_url": "https://idp.acme.test/metadata",
        "sp_entity_id": "urn:acgs:sp",
        "sp_private_key": "***REDACTED***",
        "idp_signing_certificates": [PEM_A, PEM_B],
        "allowed_redirect_urls": ["https://app.acme.test/", "https://b.acme.test/x"],
        "attribute_map": {"email": "mail", "groups": "memberOf"},
        "want_assertions_signed": True,
        "session_seconds": 3600,
    }
    values = values_of(SAML, stored)
    assert "sp_private_key" not in values
    assert "REDACTED" not in " ".join(values.values())
    assert values["allowed_redirect_urls"] == "https://app.acme.test/\nhttps://b.acme.test/x"
    assert values["attribute_map.email"] == "mail"
    assert "attribute_map.username" not in values
    assert values["want_assertions_signed"] == "on"
    assert values["session_seconds"] == "3600"
    changes = config_of(SAML, values, editing=True)
    assert "sp_private_key" not in changes  # an empty secret keeps the stored one
    assert changes["idp_signing_certificates"] == [PEM_A + "\n", PEM_B + "\n"]
    assert changes["allowed_redirect_urls"] == stored["allowed_redirect_urls"]
    assert changes["attribute_map"] == stored["attribute_map"]
    assert changes["session_seconds"] == 3600
    assert changes["idp_slo_url"] is None  # emptied on edit: back to its default (absent)
    assert changes["want_assertions_encrypted"] is False  # an unticked box is false


def test_a_new_secret_on_edit_replaces_the_stored_one() -> None:
    changes = config_of(LDAP, {"bind_password": "n3w"}, editing=True)
    assert changes["bind_password"] == "n3w"


def test_every_bad_field_is_reported_at_once_by_the_schema() -> None:
    form = _form(
        defaults_of(SAML),
        sp_entity_id="urn:acgs:sp",
        idp_sso_url="not a url",
        allowed_clock_skew_seconds="soon",
        idp_signing_certificates="not a certificate",
    )
    config = config_of(SAML, form, editing=False)
    assert config["allowed_clock_skew_seconds"] == "soon"  # passed on for the schema to report
    with pytest.raises(ValidationFailed) as failed:
        SAML.validate(config, production=False)
    fields = {field_of(p["field"]) for p in failed.value.details["fields"]}
    assert {"idp_sso_url", "allowed_clock_skew_seconds", "idp_signing_certificates"} <= fields


def test_envelope_fields_name_their_inputs() -> None:
    assert field_of("config.server_url") == "server_url"
    assert field_of("config") == "form"
    assert field_of("integration_name") == "integration_name"


@pytest.mark.parametrize(
    "path", ["/console", "/console/", "/console/tenants/7d3c0c52-8f8b-4a51-9a43-2f6f7b1f6a10"]
)
def test_a_console_path_is_a_landing(path: str) -> None:
    assert console_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        None,
        "",
        "https://evil.test/console/",
        "//evil.test/console/",
        "/console//evil.test",
        "/console/../v1/tenants",
        "/console/%2e%2e/v1",
        "/console/\\evil",
        "/console/x\r\nSet-Cookie: a=b",
        "/consoles",
        "/v1/auth/me",
        "/console/#frag",
        "/console/" + "a" * 600,
    ],
)
def test_anything_else_is_not(path: str | None) -> None:
    assert console_path(path) is None
