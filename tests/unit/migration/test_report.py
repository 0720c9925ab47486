"""The PDF report of each kind of job: its summary as readable text (no Python reprs) and the
charts drawn from the keys each kind puts in its result_summary."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader

from infra.reports import migration_report
from infra.reports.migration_report import render_report

JOB = {
    "job_id": "6f1c0000-0000-0000-0000-000000000000",
    "tenant_id": "acme",
    "job_type": "shadow_mode",
    "source_system": "LegacyGovernanceV1",
    "job_status": "completed",
    "created_by": "ivan",
    "created_at": "2026-12-02T17:00:00Z",
    "total_items": 10,
    "processed_items": 10,
    "successful_items": 10,
    "failed_items": 0,
    "constitutional_hash": "cdd01ef066bc6cf2",
}


def _read(summary: dict[str, Any], job_type: str) -> tuple[str, int]:
    pdf = render_report({**JOB, "job_type": job_type, "result_summary": summary}, [])
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text, sum(len(page.images) for page in reader.pages)


def test_a_shadow_job_charts_its_agreement_series_of_time_and_rate_pairs() -> None:
    summary = {
        "decisions": 10,
        "agreement_rate": 0.9,
        "latency_ms": {"legacy": {"p50": 4.5, "p99": None}, "rego": {"p50": 0.1, "p99": 0.2}},
        "agreement_series": [
            ["2025-11-02T10:00:00+00:00", 1.0],
            ["2025-11-02T11:00:00+00:00", 0.8],
        ],
    }

    text, images = _read(summary, "shadow_mode")

    assert "agreement rate: 90.00%" in text
    assert "latency ms: legacy: (p50: 4.5, p99: -), rego: (p50: 0.1, p99: 0.2)" in text
    assert "Agreement over time (2 points, lowest 80.00%)" in text
    assert images == 1
    assert "{" not in text


def test_a_series_of_another_shape_draws_no_chart() -> None:
    text, images = _read({"agreement_series": [{"at": "10:00", "agreement_rate": 1.0}]}, "x")

    assert "Agreement over time" not in text
    assert images == 0


def test_a_gap_analysis_charts_its_severities_and_an_import_lists_its_conflicts() -> None:
    gaps, gap_images = _read(
        {"score": 4, "gap_severities": {"low": 2, "medium": 1}, "gaps": {"open": 3}}, "gap_analysis"
    )
    imported, import_images = _read(
        {"rows": 3, "conflicts_listed": [{"row": 3, "decision_id": "D-1"}]}, "decision_log_import"
    )

    assert ("Gap severities" in gaps, gap_images) == (True, 1)
    assert "gaps: open: 3" in gaps
    assert "conflicts listed: row: 3, decision_id: D-1" in imported
    assert import_images == 0


def test_a_failed_job_shows_its_error_and_lists_only_the_first_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(migration_report, "MAX_FAILED_ROWS", 2)
    job = {**JOB, "job_status": "failed", "failed_items": 3, "error_details": "ValueError: bad row"}
    failures = [
        {"item_id": f"row {n}", "error": f"problem {n}", "recommendation": None} for n in (1, 2, 3)
    ]

    reader = PdfReader(io.BytesIO(render_report(job, failures)))
    text = "\n".join(page.extract_text() for page in reader.pages)

    assert "Error\nValueError: bad row" in text
    assert "Failed items (3)" in text
    assert "row 1\nError: problem 1\nRecommendation: Manual review required" in text
    assert "row 2" in text
    assert "row 3" not in text
    assert "... and 1 more (see the results API)." in text
