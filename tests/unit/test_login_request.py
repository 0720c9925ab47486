"""The LDAP login body: its fields' lengths are checked before the directory is asked (every
field too long named at once, no value echoed), and it never shows its password."""

from __future__ import annotations

import pytest

from api.http.identity import MAX_FIELD, MAX_PASSWORD, LoginRequest, _check_lengths
from domain.errors import ValidationFailed


def _login(**changes: str) -> LoginRequest:
    return LoginRequest(**{"tenant_slug": "acme", "username": "bob", "password": "pw", **changes})


def test_a_body_within_the_limits_passes() -> None:
    _check_lengths(_login(username="u" * MAX_FIELD, password="p" * MAX_PASSWORD))


def test_every_field_too_long_is_named_and_no_value_echoed() -> None:
    long_password = "s3cret" * MAX_PASSWORD
    with pytest.raises(ValidationFailed) as refused:
        _check_lengths(_login(tenant_slug="t" * (MAX_FIELD + 1), password=long_password))
    assert refused.value.details["fields"] == [
        {"field": "tenant_slug", "message": f"must be at most {MAX_FIELD} characters"},
        {"field": "password", "message": f"must be at most {MAX_PASSWORD} characters"},
    ]
    assert refused.value.message == (
        f"tenant_slug: must be at most {MAX_FIELD} characters; "
        f"password: must be at most {MAX_PASSWORD} characters"
    )
    assert "s3cret" not in repr(refused.value.details)


def test_a_login_body_never_shows_its_password() -> None:
    assert repr(_login(password="s3cret-pw")) == "LoginRequest('acme', 'bob')"
