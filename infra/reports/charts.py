"""The charts of a migration job's report, drawn by matplotlib (its Agg backend: no display) as
PNG images. Each chart is drawn from a key of the job's `result_summary` when the summary has it,
so every kind of job feeds the same report:

- `conversion_coverage`: {status: policies}, e.g. {"converted": 98, "partial": 2} (bars);
- `agreement_series`: [[time, agreement rate 0..1], ...] oldest first (a line), the shape of the
  shadow metrics (`GET /v1/tenants/{tid}/shadow`) and of a `shadow_mode` job's summary;
- `gap_severities`: {severity: gaps}, e.g. {"critical": 1, "high": 4} (bars).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
from matplotlib.figure import Figure

_SEVERITY_ORDER = ("critical", "high", "medium", "low")
_COLOURS = {
    "converted": "#2e7d32",
    "unproven": "#f9a825",
    "partial": "#ef6c00",
    "failed": "#c62828",
    "critical": "#b71c1c",
    "high": "#e65100",
    "medium": "#f9a825",
    "low": "#558b2f",
}


def charts(summary: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """(title, PNG) of every chart the summary has data for."""
    drawn: list[tuple[str, bytes]] = []
    coverage = summary.get("conversion_coverage")
    if isinstance(coverage, Mapping) and coverage:
        drawn.append(("Conversion coverage", _bars(coverage, "policies")))
    points = _agreement_points(summary.get("agreement_series"))
    if points:
        lowest = min(rate for _, rate in points)
        title = f"Agreement over time ({len(points)} points, lowest {lowest:.2%})"
        drawn.append((title, _agreement(points)))
    severities = summary.get("gap_severities")
    if isinstance(severities, Mapping) and severities:
        ordered = {k: severities[k] for k in _SEVERITY_ORDER if k in severities}
        ordered |= {k: v for k, v in severities.items() if k not in ordered}
        drawn.append(("Gap severities", _bars(ordered, "gaps")))
    return drawn


def _bars(counts: Mapping[str, Any], unit: str) -> bytes:
    figure = Figure(figsize=(6, 2.6), dpi=110)
    axes = figure.subplots()
    labels = [str(k) for k in counts]
    values = [float(v) if isinstance(v, int | float) else 0.0 for v in counts.values()]
    bars = axes.bar(labels, values, color=[_COLOURS.get(k, "#1565c0") for k in labels])
    axes.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize=8)
    axes.set_ylabel(unit)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def _agreement_points(series: Any) -> list[tuple[str, float]]:
    """The (time, rate) pairs of a series; an entry of another shape is not drawn."""
    if not isinstance(series, Sequence) or isinstance(series, str):
        return []
    return [
        (str(point[0]), float(point[1]))
        for point in series
        if isinstance(point, Sequence)
        and not isinstance(point, str)
        and len(point) == 2
        and isinstance(point[1], int | float)
    ]


def _agreement(points: list[tuple[str, float]]) -> bytes:
    figure = Figure(figsize=(6, 2.6), dpi=110)
    axes = figure.subplots()
    rates = [rate * 100 for _, rate in points]
    labels = [at for at, _ in points]
    axes.plot(range(len(rates)), rates, marker="o", color="#1565c0")
    axes.axhline(95, color="#c62828", linestyle="--", linewidth=1, label="95 % step-up bar")
    step = max(1, len(labels) // 6)
    axes.set_xticks(range(0, len(labels), step), labels[::step], fontsize=7)
    axes.set_ylim(0, 100)
    axes.set_ylabel("agreement %")
    axes.legend(fontsize=7, loc="lower right")
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
