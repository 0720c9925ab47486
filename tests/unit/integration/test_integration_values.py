"""An integration's type and name as the API receives them: a known type, and a name that is a
non-empty string of at most 255 printable characters (kept trimmed)."""

from __future__ import annotations

import pytest

from domain.errors import ValidationFailed
from domain.integration.values import IntegrationType, integration_name


def test_a_type_is_one_of_the_known_ones() -> None:
    assert IntegrationType.parse("siem") is IntegrationType.SIEM
    with pytest.raises(ValidationFailed) as refused:
        IntegrationType.parse("fax")
    assert str(refused.value) == (
        "integration_type: must be one of ldap, saml, oauth, oidc, kafka, siem, data_warehouse"
    )


def test_a_name_is_kept_trimmed() -> None:
    assert integration_name("  Corporate LDAP ") == "Corporate LDAP"
    assert integration_name("n" * 255) == "n" * 255


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "must be a string"),
        ("   ", "must not be empty"),
        ("n" * 256, "must be at most 255 characters"),
        ("LDAP\x00prod", "must not contain control characters"),
        ("LDAP\x7f", "must not contain control characters"),
    ],
)
def test_a_bad_name_is_refused_with_its_reason(value: object, message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        integration_name(value)
    assert refused.value.details == {"fields": [{"field": "integration_name", "message": message}]}
