"""Chart specifications for the console's chart script (`static/charts.js`, drawing with uPlot).

A chart is plain data built from the figures a page already shows: the x values (Unix seconds
for a time axis, 0..n-1 for categories with their labels), one or more named series, the unit of
the y axis and, optionally, its range. A template puts it in a `data-chart` attribute (as JSON,
escaped by autoescape), next to a table holding the same numbers as the chart's text alternative.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

Number = float | int | None


def _seconds(at: datetime | str) -> int:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    if moment.tzinfo is None:
        raise ValueError(f"a chart's time needs a time zone: {at!r}")
    return int(moment.timestamp())


def _checked(series: Mapping[str, Sequence[Number]], points: int) -> list[dict[str, Any]]:
    if not series:
        raise ValueError("a chart needs at least one series")
    made = []
    for label, values in series.items():
        if len(values) != points:
            raise ValueError(f"series {label!r} has {len(values)} values for {points} points")
        made.append({"label": label, "values": [None if v is None else float(v) for v in values]})
    return made


def over_time(
    times: Sequence[datetime | str],
    series: Mapping[str, Sequence[Number]],
    *,
    unit: str = "",
    y_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Lines over a time axis (`times`: aware datetimes or ISO 8601 strings, oldest first)."""
    return {
        "kind": "line",
        "x": [_seconds(t) for t in times],
        "labels": [],
        "series": _checked(series, len(times)),
        "unit": unit,
        "y_range": list(y_range) if y_range else None,
    }


def by_category(counts: Mapping[str, Number], label: str, *, unit: str = "") -> dict[str, Any]:
    """Bars, one per category, in the mapping's order."""
    names = list(counts)
    return {
        "kind": "bars",
        "x": list(range(len(names))),
        "labels": names,
        "series": _checked({label: [counts[n] for n in names]}, len(names)),
        "unit": unit,
        "y_range": None,
    }


def percent(rate: float | None) -> float | None:
    """A rate in [0, 1] as a percentage, as the charts and their tables show it."""
    return None if rate is None else round(rate * 100, 2)
