"""The gaps page's filters: empty means any, each bad one gets its own message (all at once)."""

from __future__ import annotations

from api.console.gap_pages import read_filters


def test_empty_filters_mean_any() -> None:
    assert read_filters({}) == ({"status": "", "severity": "", "policy_id": ""}, {})


def test_good_filters_are_kept_trimmed() -> None:
    filters, errors = read_filters({"status": "open", "severity": " high ", "policy_id": "door "})
    assert filters == {"status": "open", "severity": "high", "policy_id": "door"}
    assert errors == {}


def test_every_bad_filter_is_named_at_once() -> None:
    filters, errors = read_filters(
        {"status": "closed", "severity": "urgent", "policy_id": "a\x01b", "other": "x"}
    )
    assert set(errors) == {"status", "severity", "policy_id"}
    assert errors["status"] == "one of open, fixed, accepted"
    assert errors["severity"] == "one of critical, high, medium, low"
    assert filters["policy_id"] == "a\x01b"  # kept to show it back in the form
    assert set(read_filters({"policy_id": "p" * 256})[1]) == {"policy_id"}
