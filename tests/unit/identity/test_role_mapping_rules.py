"""A role mapping's inputs: every problem reported at once, LDAP groups must be DNs, an update
that changes nothing records nothing, and a deleted mapping can be neither updated nor deleted."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from domain.errors import InvalidStateTransition, ValidationFailed
from domain.maci import MaciRole
from domain.role_mapping import MAX_SOURCE_VALUE, RoleMapping
from tests.unit.kafka.test_schemas import META


def define(**overrides: Any) -> RoleMapping:
    fields: dict[str, Any] = {
        "source_type": "ldap_group",
        "source_value": "CN=Admins, DC=Acme",
        "maci_role": "EXECUTIVE",
        "priority": 10,
        **overrides,
    }
    return RoleMapping.define(mapping_id=uuid4(), integration_id=uuid4(), meta=META, **fields)


def problems(**overrides: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        define(**overrides)
    return refused.value.details["fields"]  # type: ignore[no-any-return]


def test_a_group_dn_is_stored_normalised() -> None:
    assert define().source_value == "cn=admins,dc=acme"
    assert define(source_type="oidc_claim", source_value=" admins ").source_value == "admins"


def test_every_problem_is_reported_at_once() -> None:
    assert problems(source_value="x" * (MAX_SOURCE_VALUE + 1), maci_role="KING", priority=-1) == [
        {"field": "source_value", "message": f"must be at most {MAX_SOURCE_VALUE} characters"},
        {"field": "maci_role", "message": f"must be one of {[r.value for r in MaciRole]}"},
        {"field": "priority", "message": "must be an integer from 0 to 1000000"},
    ]
    assert problems(source_value="admins") == [
        {"field": "source_value", "message": "must be a group DN, e.g. cn=admins,dc=x"}
    ]


def test_an_update_that_changes_nothing_records_nothing() -> None:
    mapping = define()
    assert mapping.change({"source_value": "cn=ADMINS,dc=acme", "priority": 10}, META) == []
    assert len(mapping.collect_events()) == 1  # only its creation
    assert mapping.change({"source_value": "cn=ops,dc=acme"}, META) == ["source_value"]
    assert mapping.source_value == "cn=ops,dc=acme"
    with pytest.raises(ValidationFailed, match="no fields to update"):
        mapping.change({}, META)


def test_a_deleted_mapping_can_be_neither_updated_nor_deleted() -> None:
    mapping = define()
    mapping.delete(META)
    with pytest.raises(InvalidStateTransition, match="cannot update a deleted role mapping"):
        mapping.change({"priority": 1}, META)
    with pytest.raises(InvalidStateTransition, match="cannot delete a deleted role mapping"):
        mapping.delete(META)
