"""What a decision log keeps of an input: its digest, and (when enabled) the masked input."""

from __future__ import annotations

import pytest

from domain.errors import ValidationFailed
from domain.registry.decision_log import MASK, input_digest, mask_fields, masked


def test_the_digest_ignores_key_order_and_differs_with_any_value() -> None:
    assert input_digest({"a": 1, "b": [1, 2]}) == input_digest({"b": [1, 2], "a": 1})
    assert input_digest({"a": 1}) != input_digest({"a": 2})
    assert len(input_digest({})) == 64


def test_masking_replaces_the_values_at_the_paths_and_leaves_the_original_alone() -> None:
    document = {"user": {"ssn": "123", "name": "Ann"}, "card": "4111", "n": 1}
    copy = masked(document, ("user.ssn", "card", "absent.path", "n.deeper"))
    assert copy == {"user": {"ssn": MASK, "name": "Ann"}, "card": MASK, "n": 1}
    assert document["user"] == {"ssn": "123", "name": "Ann"}
    assert masked(document, ()) is document


def test_mask_fields_are_dotted_paths() -> None:
    assert mask_fields(["user.ssn", "user.ssn", "card"]) == ("user.ssn", "card")
    for bad in (["with space"], ["a..b"], [""], "user.ssn", [1], ["x"] * 101):
        with pytest.raises(ValidationFailed):
            mask_fields(bad)
