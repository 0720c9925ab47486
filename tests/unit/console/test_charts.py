"""The chart specifications the console's chart script draws: times as Unix seconds, categories
in order with their labels, every series as long as its axis, and the JSON escaped where a
template puts it (an attribute), so a label never becomes markup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from html import unescape

import pytest

from api.console.charts import by_category, over_time, percent
from api.console.rendering import ENV


def test_times_become_unix_seconds_from_iso_strings_or_aware_datetimes() -> None:
    spec = over_time(
        [
            "2026-12-03T06:00:00+00:00",
            datetime(2026, 12, 3, 8, 1, tzinfo=timezone(timedelta(hours=2))),
        ],
        {"Agreement (%)": [99.5, None]},
        unit="%",
        y_range=(0, 100),
    )
    assert spec == {
        "kind": "line",
        "x": [1796277600, 1796277660],
        "labels": [],
        "series": [{"label": "Agreement (%)", "values": [99.5, None]}],
        "unit": "%",
        "y_range": [0, 100],
    }


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        over_time([datetime(2026, 12, 3, 6, 0)], {"s": [1]})  # noqa: DTZ001 - the case tested


def test_several_series_share_the_axis_and_must_fit_it() -> None:
    times = [datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)]
    spec = over_time(times, {"Score": [36, 13], "Open": [8, 4]})
    assert [s["label"] for s in spec["series"]] == ["Score", "Open"]
    assert spec["series"][1]["values"] == [8.0, 4.0]
    with pytest.raises(ValueError, match="has 1 values for 2 points"):
        over_time(times, {"Score": [36]})
    with pytest.raises(ValueError, match="at least one series"):
        over_time(times, {})


def test_categories_keep_their_order_and_labels() -> None:
    spec = by_category({"critical": 2, "high": 0, "medium": 1, "low": 5}, "Gaps found")
    assert spec["kind"] == "bars"
    assert spec["x"] == [0, 1, 2, 3]
    assert spec["labels"] == ["critical", "high", "medium", "low"]
    assert spec["series"] == [{"label": "Gaps found", "values": [2.0, 0.0, 1.0, 5.0]}]


def test_an_empty_category_chart_has_empty_axes() -> None:
    spec = by_category({}, "Nothing")
    assert (spec["x"], spec["labels"], spec["series"][0]["values"]) == ([], [], [])


def test_percent_rounds_to_hundredths_and_keeps_none() -> None:
    assert percent(0.998667) == 99.87
    assert percent(1) == 100
    assert percent(None) is None


def test_the_attribute_holds_the_json_escaped() -> None:
    label = "\"'><img src=x onerror=alert(1)></div><script>alert(2)</script>&amp;"
    spec = by_category({label: 1}, label)
    html = ENV.get_template("chart.html").module.chart("c", spec, "a chart", "t")  # type: ignore[attr-defined]
    assert "<img" not in html
    assert "<script" not in html
    start = html.index('data-chart="') + len('data-chart="')
    attribute = html[start : html.index('"', start)]
    assert json.loads(unescape(attribute)) == spec  # what the browser's JSON.parse reads
