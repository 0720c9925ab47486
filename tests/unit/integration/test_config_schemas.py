"""Each integration type's configuration schema: bad input is refused with every bad field named
at once (never its value), defaults are filled in, secrets are marked, and the docs list every
field with an example."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.integration.ldap_filters import escape_filter_value, render_filter
from domain.integration.schemas import LDAP, SCHEMAS, SECRET_NAMES
from domain.integration.values import IntegrationType

DOCS = Path(__file__).resolve().parents[3] / "docs" / "integrations.md"
LDAP_OK = {
    "server_url": "ldaps://ldap.acme.com:636",
    "base_dn": "dc=acme,dc=com",
    "bind_dn": "cn=acgs2,ou=services,dc=acme,dc=com",
    "bind_password": "secret123",
}


def _fields(config: Any, kind: IntegrationType, *, production: bool = True) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        SCHEMAS[kind].validate(config, production=production)
    assert caught.value.code == "VALIDATION_ERROR"
    return {f["field"]: f["message"] for f in caught.value.details["fields"]}


def test_ldap_defaults_are_filled_in() -> None:
    config = LDAP.validate(LDAP_OK, production=True)
    assert config["user_search_filter"] == "(uid={username})"
    assert config["group_search_filter"] == "(member={user_dn})"
    assert config["tls_verify"] is True
    assert config["start_tls"] is False
    assert config["connection_pool_size"] == 10


def test_unknown_keys_and_wrong_types_are_all_listed_at_once() -> None:
    config = {
        **LDAP_OK,
        "server_url": "http://ldap.acme.com",
        "start_tls": "yes",
        "connection_pool_size": 4,
        "colour": "blue",
        "attribute_map": {"shoe_size": "x"},
    }
    fields = _fields(config, IntegrationType.LDAP)
    assert set(fields) == {
        "config.server_url",
        "config.start_tls",
        "config.connection_pool_size",
        "config.colour",
        "config.attribute_map",
    }
    assert fields["config.connection_pool_size"] == "must be between 5 and 50"
    assert fields["config.colour"] == "unknown field"


def test_a_rejected_secret_is_never_echoed() -> None:
    with pytest.raises(ValidationFailed) as caught:
        LDAP.validate({**LDAP_OK, "bind_password": 12345678, "bogus": 1}, production=True)
    assert "12345678" not in repr(caught.value.details) + caught.value.message


def test_tls_verify_false_is_refused_in_production_only() -> None:
    plain = {**LDAP_OK, "server_url": "ldap://ldap.acme.com", "tls_verify": False}
    assert _fields(plain, IntegrationType.LDAP) == {
        "config.tls_verify": "may be false only outside the production profile"
    }
    assert LDAP.validate(plain, production=False)["tls_verify"] is False


def test_plain_ldap_needs_start_tls_when_verifying() -> None:
    fields = _fields({**LDAP_OK, "server_url": "ldap://ldap.acme.com"}, IntegrationType.LDAP)
    assert list(fields) == ["config.server_url"]
    assert LDAP.validate(
        {**LDAP_OK, "server_url": "ldap://ldap.acme.com", "start_tls": True}, production=True
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("uid={username}", "balanced parentheses"),
        ("(uid={username}", "balanced parentheses"),
        ("(uid={user})", "only the placeholders"),
        ("(uid=alice)", "must use a placeholder"),
    ],
)
def test_bad_search_filters_are_refused(template: str, message: str) -> None:
    fields = _fields({**LDAP_OK, "user_search_filter": template}, IntegrationType.LDAP)
    assert message in fields["config.user_search_filter"]


def test_an_empty_group_filter_means_no_group_search_but_an_empty_user_filter_is_refused() -> None:
    config = LDAP.validate({**LDAP_OK, "group_search_filter": ""}, production=True)
    assert config["group_search_filter"] == ""
    fields = _fields({**LDAP_OK, "user_search_filter": ""}, IntegrationType.LDAP)
    assert "balanced parentheses" in fields["config.user_search_filter"]


@pytest.mark.parametrize(
    ("kind", "config", "bad"),
    [
        (
            IntegrationType.SAML,
            {"sp_entity_id": "sp"},
            {"config.idp_entity_id", "config.idp_sso_url", "config.idp_signing_certificates"},
        ),
        (
            IntegrationType.SAML,
            {"sp_entity_id": "sp", "idp_metadata_url": "ftp://x"},
            {"config.idp_metadata_url"},
        ),
        (IntegrationType.OIDC, {"client_id": "c"}, {"config.issuer"}),
        (
            IntegrationType.OIDC,
            {
                "issuer": "https://idp",
                "client_id": "c",
                "allowed_id_token_algorithms": ["none", "HS256"],
            },
            {"config.allowed_id_token_algorithms"},
        ),
        (IntegrationType.OAUTH, {"client_id": "c", "token_url": "https://t"}, {"config.issuer"}),
        (IntegrationType.KAFKA, {"bootstrap_servers": ["nohost"]}, {"config.bootstrap_servers"}),
        (
            IntegrationType.KAFKA,
            {"bootstrap_servers": ["k:9093"], "security_protocol": "SASL_SSL"},
            {"config.sasl_mechanism", "config.sasl_username", "config.sasl_password"},
        ),
        (IntegrationType.SIEM, {"kind": "splunk_hec"}, {"config.url", "config.token"}),
        (IntegrationType.SIEM, {"kind": "arcsight"}, {"config.kind"}),
        (
            IntegrationType.DATA_WAREHOUSE,
            {"provider": "snowflake", "account": "a"},
            {"config.user", "config.password", "config.database", "config.warehouse"},
        ),
        (IntegrationType.DATA_WAREHOUSE, [], {"config"}),
    ],
)
def test_bad_config_per_type(kind: IntegrationType, config: Any, bad: set[str]) -> None:
    assert set(_fields(config, kind)) == bad


def test_a_good_config_of_every_type_passes() -> None:
    good: dict[IntegrationType, dict[str, Any]] = {
        IntegrationType.LDAP: LDAP_OK,
        IntegrationType.SAML: {"sp_entity_id": "sp", "idp_metadata_url": "https://idp/md"},
        IntegrationType.OIDC: {"issuer": "https://idp", "client_id": "c", "client_secret": "s"},
        IntegrationType.OAUTH: {
            "client_id": "c",
            "authorization_url": "https://a",
            "token_url": "https://t",
        },
        IntegrationType.KAFKA: {"bootstrap_servers": ["k:9093"]},
        IntegrationType.SIEM: {"kind": "cef_syslog", "host": "siem", "port": 6514},
        IntegrationType.DATA_WAREHOUSE: {
            "provider": "duckdb",
            "database_path": "/var/lib/acgs/w.db",
        },
    }
    assert set(good) == set(IntegrationType)
    for kind, config in good.items():
        assert SCHEMAS[kind].validate(config, production=True)


def test_merge_reports_changed_keys_and_null_restores_the_default() -> None:
    current = LDAP.validate({**LDAP_OK, "timeout_seconds": 9}, production=True)
    merged, changed = LDAP.merge(
        current, {"timeout_seconds": None, "base_dn": "dc=new,dc=com"}, production=True
    )
    assert merged["timeout_seconds"] == 5
    assert changed == ["base_dn", "timeout_seconds"]
    with pytest.raises(ValidationFailed):
        LDAP.merge(current, {"bind_password": None}, production=True)


def test_every_field_named_like_a_secret_is_marked_secret() -> None:
    for kind, schema in SCHEMAS.items():
        for spec in schema.fields:
            if spec.name in SECRET_NAMES or spec.name.endswith(("_password", "_secret", "_key")):
                assert spec.secret, f"{kind}.{spec.name} must be secret"


def test_docs_list_every_field_of_every_type_with_an_example() -> None:
    text = DOCS.read_text()
    for kind, schema in SCHEMAS.items():
        section = re.search(rf"^## `{kind.value}`.*?(?=^## |\Z)", text, re.M | re.S)
        assert section, f"docs/integrations.md has no section for {kind.value}"
        for spec in schema.fields:
            row = re.search(rf"^\| `{spec.name}` \|.*\|$", section.group(0), re.M)
            assert row, f"docs/integrations.md: {kind.value}.{spec.name} is not documented"
            assert row.group(0).count("|") >= 5, f"{kind.value}.{spec.name} lacks an example"


def test_filter_values_are_escaped_per_rfc_4515() -> None:
    assert escape_filter_value("a*b(c)d\\e\x00") == r"a\2ab\28c\29d\5ce\00"
    assert render_filter("(uid={username})", username="*)(uid=*") == r"(uid=\2a\29\28uid=\2a)"


@pytest.mark.parametrize(
    ("kind", "changes", "field", "message"),
    [
        (IntegrationType.LDAP, {"base_dn": "   "}, "base_dn", "must not be empty"),
        (
            IntegrationType.LDAP,
            {"attribute_map": {"email": ""}},
            "attribute_map",
            "must be an object whose values are non-empty strings",
        ),
        (
            IntegrationType.LDAP,
            {"user_search_filter": "(uid={username}))((cn=x)"},
            "user_search_filter",
            "must be an LDAP filter in balanced parentheses, e.g. (uid={username})",
        ),
        (
            IntegrationType.LDAP,
            {"server_url": "ldaps://ldap.acme.com:99999"},
            "server_url",
            "must be a valid URL",
        ),
        (
            IntegrationType.KAFKA,
            {"bootstrap_servers": ["k:9093", ""]},
            "bootstrap_servers",
            "must be a list of non-empty strings",
        ),
    ],
)
def test_each_bad_value_is_named_with_its_reason(
    kind: IntegrationType, changes: dict[str, Any], field: str, message: str
) -> None:
    base = LDAP_OK if kind is IntegrationType.LDAP else {"bootstrap_servers": ["k:9093"]}
    assert _fields({**base, **changes}, kind)[f"config.{field}"] == message


def test_changes_must_be_an_object() -> None:
    current = LDAP.validate(LDAP_OK, production=True)
    with pytest.raises(ValidationFailed) as refused:
        LDAP.merge(current, ["base_dn"], production=True)
    assert refused.value.details["fields"] == [
        {"field": "config", "message": "must be an object", "source": "body"}
    ]
