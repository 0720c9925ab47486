"""The audit pages' query: filters read from a form or query string (every bad one at once,
empty fields ignored, the last week by default), the paging links (next carries the cursor,
previous goes back through the cursors seen), the chart's step, and which console paths are
counted against a tenant's quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from litestar.datastructures import MultiDict

from api.console.admission import NOT_COUNTED
from api.console.audit_pages import DEFAULT_DAYS, MAX_BACK, read_query
from projections.audit_queries import AuditFilters, timeline_step

DAYS = 366


def _query(**values: str | list[str]) -> MultiDict[str]:
    pairs: list[tuple[str, str]] = []
    for key, value in values.items():
        pairs += [(key, v) for v in value] if isinstance(value, list) else [(key, value)]
    return MultiDict(pairs)


def test_empty_fields_are_no_filter_and_the_range_defaults_to_the_last_week() -> None:
    query = read_query(_query(event_category="", actor_id="", result=""), DAYS)
    assert query.errors == {}
    assert query.filters.event_category is None
    assert query.filters.actor_id is None
    span = query.filters.end_time - query.filters.start_time
    assert span == timedelta(days=DEFAULT_DAYS)
    assert abs(query.filters.end_time - datetime.now(UTC)) < timedelta(minutes=2)
    assert query.limit == 50


def test_every_bad_filter_is_listed_at_once() -> None:
    query = read_query(
        _query(
            start_time="yesterday",
            end_time="2026-12-01T00:00:00",
            event_category="nope",
            result="maybe",
            actor_id="x" * 300,
            limit="7",
            after="c" * 201,
        ),
        DAYS,
    )
    assert set(query.errors) == {
        "start_time", "event_category", "result", "actor_id", "limit", "after",
    }  # fmt: skip
    assert query.values["actor_id"] == "x" * 300  # shown back as typed


def test_a_time_without_a_zone_is_utc_and_the_range_is_checked() -> None:
    query = read_query(_query(start_time="2026-12-01T10:00", end_time="2026-12-01T09:00"), DAYS)
    assert query.errors == {"end_time": "must be after start_time"}
    fine = read_query(_query(start_time="2026-12-01T10:00:05", end_time="2026-12-02"), DAYS)
    assert fine.filters.start_time == datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)


def test_next_carries_the_cursor_and_previous_goes_back_through_the_ones_seen() -> None:
    query = read_query(
        _query(
            start_time="2026-12-01T00:00:00",
            end_time="2026-12-02T00:00:00",
            result="denied",
            limit="25",
            after="c2",
            back=["c1"],
        ),
        DAYS,
    )
    assert query.after == "c2"
    assert query.back == ["c1"]
    following = parse_qs(urlsplit(query.link("/x", after="c3", back=["c1", "c2"])).query)
    assert following["after"] == ["c3"]
    assert following["back"] == ["c1", "c2"]
    assert following["result"] == ["denied"]
    assert following["limit"] == ["25"]
    previous = parse_qs(urlsplit(query.link("/x", after="c1", back=[])).query)
    assert previous["after"] == ["c1"]
    assert "back" not in previous
    assert query.filter_query() == (
        "start_time=2026-12-01T00%3A00%3A00&end_time=2026-12-02T00%3A00%3A00&result=denied"
    )


def test_only_the_last_cursors_are_kept() -> None:
    many = [f"c{i}" for i in range(MAX_BACK + 5)]
    query = read_query(_query(back=many), DAYS)
    assert query.back == many[-MAX_BACK:]
    link = parse_qs(urlsplit(query.link("/x", after="n", back=[*many, "z"])).query)
    assert len(link["back"]) == MAX_BACK
    assert link["back"][-1] == "z"


def test_the_chart_step_gives_at_most_sixty_points() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for span, step in (
        (timedelta(minutes=30), timedelta(minutes=1)),
        (timedelta(hours=2), timedelta(minutes=5)),
        (timedelta(days=1), timedelta(minutes=30)),
        (timedelta(days=7), timedelta(hours=3)),
        (timedelta(days=366), timedelta(days=7)),
    ):
        filters = AuditFilters(start_time=start, end_time=start + span)
        assert timeline_step(filters) == step, span
        assert span / step <= 60


def test_static_files_sign_in_and_sign_out_are_not_counted() -> None:
    for path in ("/console/static/console.css", "/console/sign-in", "/console/sign-in/ldap",
                 "/console/sign-out"):  # fmt: skip
        assert NOT_COUNTED.match(path), path
    for path in ("/console/", "/console/tenants", "/console/sign-inside", "/console/audit"):
        assert not NOT_COUNTED.match(path), path
