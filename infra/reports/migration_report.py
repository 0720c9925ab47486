"""A migration job's PDF report (fpdf2): the job and its counts, the result summary, the charts
the summary has data for (`infra/reports/charts.py`), the failed items with recommendations, and
the error of a failed job."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpdf import FPDF

MAX_FAILED_ROWS = 500  # more are counted, not listed: the results API lists them all
_CHART_KEYS = frozenset({"conversion_coverage", "agreement_series", "gap_severities"})


def render_report(job: Mapping[str, Any], failures: Sequence[Mapping[str, Any]]) -> bytes:
    # fpdf2 and matplotlib are imported here, by the report alone: they are the slowest imports
    # of the service, which every `acgs` command and process start would otherwise pay.
    from fpdf import FPDF  # noqa: PLC0415

    from infra.reports.charts import charts  # noqa: PLC0415

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=14)
    pdf.set_title(f"Migration job {job['job_id']}")
    pdf.add_page()
    _heading(pdf, f"Migration job report: {job['job_type']}", 15)
    _lines(
        pdf,
        [
            f"Job: {job['job_id']}",
            f"Tenant: {job['tenant_id']}",
            f"Source system: {job['source_system']}",
            f"Status: {job['job_status']}  ({job.get('progress_percentage', 0)} % processed)",
            f"Requested by {job['created_by']} at {job['created_at']}",
            f"Started: {job.get('started_at') or '-'}   Finished: "
            f"{job.get('completed_at') or job.get('cancelled_at') or '-'}",
            f"Items: {job.get('total_items') or 0} total, {job['processed_items']} processed, "
            f"{job['successful_items']} successful, {job['failed_items']} failed",
            f"Constitutional hash: {job['constitutional_hash']}",
        ],
    )
    summary = job.get("result_summary") or {}
    if summary:
        _heading(pdf, "Summary", 12)
        _lines(pdf, _summary_lines(summary))
    for title, png in charts(summary):
        _heading(pdf, title, 12)
        pdf.image(io.BytesIO(png), w=170)
    if job.get("error_details"):
        _heading(pdf, "Error", 12)
        _lines(pdf, [str(job["error_details"])])
    _heading(pdf, f"Failed items ({job['failed_items']})", 12)
    if not failures:
        _lines(pdf, ["None."])
    for failure in failures[:MAX_FAILED_ROWS]:
        pdf.set_font("Helvetica", "B", 9)
        pdf.multi_cell(0, 4.5, _latin1(str(failure["item_id"])), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(0, 4, _latin1(f"Error: {failure['error']}"), new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(
            0,
            4,
            _latin1(f"Recommendation: {failure.get('recommendation') or 'Manual review required'}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.ln(1)
    if len(failures) > MAX_FAILED_ROWS:
        _lines(pdf, [f"... and {len(failures) - MAX_FAILED_ROWS} more (see the results API)."])
    return bytes(pdf.output())


def _summary_lines(summary: Mapping[str, Any]) -> list[str]:
    return [
        f"{key.replace('_', ' ')}: {_shown(key, value)}"
        for key, value in summary.items()
        if key not in _CHART_KEYS
    ]


def _shown(key: str, value: Any, *, nested: bool = False) -> str:
    """A summary value as text: rates in per cent, mappings as `key: value` pairs (nested ones
    in parentheses), lists joined by `;`."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2%}" if key.endswith("_rate") else f"{value:g}"
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{k}: {_shown(str(k), v, nested=True)}" for k, v in value.items())
        return f"({pairs})" if nested else pairs
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "; ".join(_shown(key, item) for item in value) or "none"
    return str(value)


def _heading(pdf: FPDF, text: str, size: int) -> None:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", size)
    pdf.multi_cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")


def _lines(pdf: FPDF, lines: list[str]) -> None:
    pdf.set_font("Helvetica", "", 9)
    for line in lines:
        pdf.multi_cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")
