"""Request bodies are checked in full: every problem at once, depth, duplicate keys, NUL."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.http import bodies
from api.http.bodies import MAX_BODY_DEPTH, decode, struct_problems
from api.http.dto import CreateTenantRequest, UpdateTenantRequest
from domain.errors import ValidationFailed


def _refusal(raw: bytes) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as refused:
        decode(raw)
    assert refused.value.code == "VALIDATION_ERROR"
    fields: list[dict[str, str]] = refused.value.details["fields"]
    return fields


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 3000 + b"0" + b"}" * 3000,
        b"[" * (MAX_BODY_DEPTH + 1) + b"]" * (MAX_BODY_DEPTH + 1),
    ],
)
def test_bodies_nested_too_deep_are_refused(raw: bytes) -> None:
    assert _refusal(raw) == [
        {"field": "body", "message": f"nests deeper than {MAX_BODY_DEPTH} levels", "source": "body"}
    ]


def test_a_body_at_the_depth_limit_decodes() -> None:
    assert decode(b"[" * MAX_BODY_DEPTH + b"]" * MAX_BODY_DEPTH)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": 1, "a": 2}', "repeats a key within an object"),
        (b'{"x": [{"b": 1, "b": 1}]}', "repeats a key within an object"),
        (b'{"a": "x\\u0000y"}', "must not contain the NUL character (U+0000)"),
        (b'{"a\\u0000": 1}', "must not contain the NUL character (U+0000)"),
    ],
)
def test_duplicate_keys_and_nul_are_refused(raw: bytes, message: str) -> None:
    assert [f["message"] for f in _refusal(raw)] == [message]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a:b": 1, "a:b": 2}',  # colons inside keys and strings are not members
        b'{"t": "12:00:00", "u": {"k": ":", "k": "::"}}',
        b'{"x": [{"b": 1}, {"c": ":", "c": 2}], "y": "a:b"}',
        b'{"\\u003a": 1, ":": 2}',  # an escape writes the same key: parsed again
        b'{"a": 1, "a": 2, "b": "\\u003a"}',  # the escape's colon would hide the repeat
        b'{"\\u00e9": 1, "\xc3\xa9": 2}',
    ],
)
def test_repeated_keys_are_found_whatever_colons_the_strings_hold(raw: bytes) -> None:
    assert [f["message"] for f in _refusal(raw)] == ["repeats a key within an object"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a:b": 1, "a": "b:c", "c": {"d": [":", {"e": "::"}]}}',
        b'{"\\u003a": ":", "b": "\\u003a\\u003a", "c": 1}',
        b'{"k": "C:\\\\users\\\\me"}',
        b'[{"a": 1}, {"a": 2}, ":"]',
        b'"::"',
        b"{}",
    ],
)
def test_bodies_with_colons_in_strings_and_no_repeated_key_decode(raw: bytes) -> None:
    assert decode(raw) is not None


@pytest.mark.parametrize(
    "raw", [b'{"a": "\\ud800"}', b'{"a": 1e400}', b"{'a': 1}", b'{"a": NaN}', b"\xff\xfe"]
)
def test_malformed_json_is_refused_without_echoing_it(raw: bytes) -> None:
    (problem,) = _refusal(raw)
    assert problem["field"] == "body"
    assert problem["message"].startswith("is not valid JSON")
    assert "ud800" not in problem["message"]


def test_every_problem_is_listed_and_no_value_is_echoed() -> None:
    problems = struct_problems(
        {"tenant_name": ["x"], "updated_at": 1, "'; DROP TABLE tenants; --": 1, "zz": "secret"},
        CreateTenantRequest,
    )
    assert [(p["field"], p["message"]) for p in problems] == [
        ("updated_at", "is read-only"),
        ("body", "has an unknown field (its name is not shown)"),
        ("zz", "unknown field"),
        ("tenant_name", "Expected `str`, got `array`"),
        ("tenant_slug", "is required"),
        ("admin_email", "is required"),
    ]
    assert "secret" not in str(problems)
    assert "DROP" not in str(problems)


def test_types_are_strict() -> None:
    problems = struct_problems(
        {"max_storage_gb": "5", "max_requests_per_minute": True, "status": "purged"},
        UpdateTenantRequest,
    )
    assert [p["field"] for p in problems] == [
        "status",
        "max_requests_per_minute",
        "max_storage_gb",
    ]


def test_a_number_with_a_zero_fraction_is_an_integer() -> None:
    """Found by the fuzzer: JSON Schema's integer includes 5.0; 5.5 and "5" are still refused."""
    assert struct_problems({"max_storage_gb": 14019.0}, UpdateTenantRequest) == []
    assert [p["field"] for p in struct_problems({"max_storage_gb": 5.5}, UpdateTenantRequest)] == [
        "max_storage_gb"
    ]


_TEXTS = st.text(st.sampled_from(["a", ":", "b", "\x00", "é", "\\", '"', "u"]), max_size=4)


def _members(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A JSON value as pairs: an object may repeat a key (as a text may)."""
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(st.tuples(_TEXTS, children), max_size=4).map(lambda pairs: ("object", pairs)),
    )


def _text(value: Any, escape: bool) -> str:
    if isinstance(value, tuple):
        items = ",".join(f"{_text(k, escape)}:{_text(v, escape)}" for k, v in value[1])
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(v, escape) for v in value) + "]"
    return json.dumps(value, ensure_ascii=escape)


@settings(max_examples=500, deadline=None)
@given(
    tree=st.recursive(st.one_of(_TEXTS, st.integers(), st.none()), _members, max_leaves=40),
    escape=st.booleans(),
)
def test_a_body_settled_without_the_walk_is_one_the_walk_finds_nothing_in(
    tree: Any, escape: bool
) -> None:
    raw = _text(tree, escape).encode()
    value = msgspec.json.decode(raw)
    if bodies._plainly_well_shaped(value, raw):
        assert bodies._walked_problems(value, raw) == []


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        (b'{"policy_id": "p", "input": {"t": "12:00", "u": {"k": [":", 1]}}}', True),
        (b'{"t": "12:00", "u": {"k": ":", "k": "::"}}', False),  # a repeated key
        (b'{"a": "\\u003a"}', False),  # an escape: the walk decides
        (b"[" * (MAX_BODY_DEPTH + 1) + b"]" * (MAX_BODY_DEPTH + 1), False),
    ],
)
def test_plain_bodies_are_settled_without_the_walk(raw: bytes, plain: bool) -> None:
    assert bodies._plainly_well_shaped(msgspec.json.decode(raw), raw) is plain
