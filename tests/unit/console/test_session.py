"""The console's session cookie and its CSRF token."""

from __future__ import annotations

import base64
import json

from api.console.session import MAX_COOKIE, ConsoleSession


def test_the_cookie_round_trips_without_padding_or_quotes() -> None:
    session = ConsoleSession.fresh().signed_in("access.token.value", "refresh-token")
    encoded = session.encode()
    assert "=" not in encoded
    assert '"' not in encoded
    assert ConsoleSession.decode(encoded) == session


def test_the_csrf_token_is_bound_to_the_seed() -> None:
    one, other = ConsoleSession.fresh(), ConsoleSession.fresh()
    assert one.csrf_token != other.csrf_token
    assert one.accepts(one.csrf_token)
    assert not one.accepts(other.csrf_token)
    assert not one.accepts("")
    assert not one.accepts(None)
    assert one.seed not in one.csrf_token


def test_sign_in_starts_a_new_seed_and_refresh_keeps_it() -> None:
    before = ConsoleSession.fresh()
    after = before.signed_in("a", "r")
    assert after.seed != before.seed  # a token planted before sign-in is worth nothing
    rotated = ConsoleSession(after.seed, "a2", "r2")
    assert rotated.csrf_token == after.csrf_token


def test_a_tampered_or_oversized_cookie_is_no_session() -> None:
    for value in (
        None,
        "",
        "not base64 !",
        "e30",
        "W10",
        "eyJzIjogInNob3J0In0",
        "x" * (MAX_COOKIE + 1),
    ):
        assert ConsoleSession.decode(value) is None


def test_a_cookie_whose_tokens_are_not_text_is_no_session() -> None:
    seed = ConsoleSession.fresh().seed
    for body in ({"s": seed, "a": 7, "r": None}, {"s": seed, "a": None, "r": ["r"]}):
        value = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        assert ConsoleSession.decode(value) is None
    fine = {"s": seed, "a": "a", "r": None}
    value = base64.urlsafe_b64encode(json.dumps(fine).encode()).decode().rstrip("=")
    assert ConsoleSession.decode(value) == ConsoleSession(seed, "a", None)
