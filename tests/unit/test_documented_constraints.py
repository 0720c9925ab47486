"""What the OpenAPI document allows in a request body, the domain accepts: the constraints
stated only in the document (api/http/dto.py) stay equal to the domain's rules, so a client
(or the fuzzer) following the document is never refused for a value the document allows."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from api.http.dto import EMAIL_PATTERN, NAME_PATTERN, SLUG_PATTERN
from domain.tenant import values


def _matching(pattern: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(pattern), fullmatch=True).filter(
        lambda s: low <= len(s) <= high
    )


@settings(max_examples=100, deadline=None)
@given(_matching(NAME_PATTERN, values.MIN_NAME, values.MAX_NAME))
def test_documented_names_are_accepted(name: str) -> None:
    assert values.tenant_name(name) == name


@settings(max_examples=100, deadline=None)
@given(_matching(SLUG_PATTERN, values.MIN_SLUG, values.MAX_SLUG))
def test_documented_slugs_are_accepted(slug: str) -> None:
    assert values.tenant_slug(slug) == slug


@settings(max_examples=100, deadline=None)
@given(_matching(EMAIL_PATTERN, 3, values.MAX_EMAIL))
def test_documented_emails_are_accepted(email: str) -> None:
    values.admin_email(email)


def test_names_the_domain_refuses_are_outside_the_document() -> None:
    for refused in ("  ab  ", "a\x01b c", "ab", " abc", "abc\n"):
        assert not (re.fullmatch(NAME_PATTERN, refused) and len(refused) >= values.MIN_NAME)
