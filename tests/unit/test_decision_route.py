"""What the edge's decision route leaves to the framework, and how it gives a body it has read
back to it (the answers themselves: tests/e2e/test_decision_route.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.http.decision_route import _decision_body, _plain_headers, _read_body, _replay

LIMIT = 100
JSON = (b"content-type", b"application/json")


def _receiver(messages: list[dict[str, Any]]) -> Any:
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    return receive


def _chunks(*parts: bytes) -> list[dict[str, Any]]:
    return [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]


def test_a_body_in_several_messages_is_read_whole() -> None:
    messages = _chunks(b'{"policy_id": ', b'"p", "input": {}}')
    read, body = asyncio.run(_read_body(_receiver(messages), LIMIT))
    assert body == b'{"policy_id": "p", "input": {}}'
    assert read == messages


@pytest.mark.parametrize(
    "messages",
    [
        _chunks(b"x" * 60, b"y" * 60),  # over the limit
        [{"type": "http.disconnect"}],  # the client went away
    ],
)
def test_what_was_read_is_given_back_in_order_then_the_rest(messages: list[Any]) -> None:
    rest = {"type": "http.request", "body": b"z", "more_body": False}
    receive = _receiver([*messages, rest])

    async def replayed() -> list[Any]:
        read, body = await _read_body(receive, LIMIT)
        assert body is None
        again = _replay(read, receive)
        return [await again() for _ in range(len(read) + 1)]

    assert asyncio.run(replayed()) == [*messages, rest]


@pytest.mark.parametrize(
    ("headers", "plain"),
    [
        ([JSON, (b"host", b"api.example.com"), (b"content-length", b"40")], True),
        ([(b"content-type", b"application/problem+json; charset=utf-8")], True),
        ([], True),
        ([(b"x-constitutional-hash", b"0123456789abcdef")], True),
        ([JSON, JSON], False),
        ([(b"content-type", b"text/plain")], False),
        ([(b"host", b"bad host/")], False),
        ([(b"content-length", b"101")], False),
        ([(b"content-length", b"-1")], False),
        ([(b"x-constitutional-hash", b"a"), (b"x-constitutional-hash", b"b")], False),
    ],
)
def test_only_plain_headers_are_served_here(
    headers: list[tuple[bytes, bytes]], plain: bool
) -> None:
    assert _plain_headers(headers, LIMIT) is plain


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"  ",
        b"[]",
        b'{"policy_id": "p"',
        b'{"policy_id": "p", "input": {}, "other": 1}',
        b'{"policy_id": "p", "input": {"a": 1, "a": 2}}',
        b'{"policy_id": "p", "input": {"a": "\\u0000"}}',
        b'{"policy_id": 5, "input": {}}',
    ],
)
def test_a_body_the_checks_or_a_strict_conversion_refuse_is_left_to_the_framework(
    body: bytes,
) -> None:
    assert _decision_body(body) is None


def test_an_ordinary_body_is_converted() -> None:
    data = _decision_body(b'{"policy_id": "p", "input": {"a": [1, {"b": "c:d"}]}}')
    assert data is not None
    assert (data.policy_id, data.input) == ("p", {"a": [1, {"b": "c:d"}]})
