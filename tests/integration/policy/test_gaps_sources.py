"""`acgs policy gaps` reads legacy sources and Rego, never the toolkit's own reports; its summary
gives finding counts per severity, not the weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import cli

pytestmark = pytest.mark.rego

POLICIES = (
    'POLICY orders\nRULE staff WHEN user.role == "staff" AND action == "read"\n'
    "THEN ALLOW OBLIGE audit\n"
    'POLICY exports\nDEFAULT allow\nRULE no-pii WHEN resource.tags CONTAINS "pii"\n'
    'THEN DENY BECAUSE "no PII"\n'
)


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "shop.rules").write_text(POLICIES, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["policy", "convert", str(sources), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "exports.rego",
        "orders.rego",
        "report.json",
        "report.md",
    ]
    return out


def _gaps(*paths: Path) -> dict[str, object]:
    result = CliRunner().invoke(cli, ["policy", "gaps", *map(str, paths), "--format", "json"])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.output)
    return report


def test_gaps_on_a_convert_output_directory_analyses_the_rego_not_the_report(
    converted: Path,
) -> None:
    report = _gaps(converted)
    findings = report["findings"]
    assert isinstance(findings, list)
    assert report["policies_analysed"] == 2
    assert {Path(finding["source"]).name for finding in findings} <= {
        "exports.rego",
        "orders.rego",
    }
    assert findings  # the Rego itself still has gaps to report (e.g. no tenant isolation)


def test_the_report_named_on_its_own_is_no_source_either(converted: Path) -> None:
    report = _gaps(converted / "report.json")
    assert report["policies_analysed"] == 0
    assert report["findings"] == []


def test_a_legacy_policy_that_happens_to_be_called_report_json_is_still_read(
    tmp_path: Path,
) -> None:
    policy = {"policy_id": "report", "default": "allow", "rules": []}
    (tmp_path / "report.json").write_text(json.dumps(policy), encoding="utf-8")
    assert _gaps(tmp_path / "report.json")["policies_analysed"] == 1


def test_convert_does_not_take_its_own_report_back_as_a_source(
    converted: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    result = CliRunner().invoke(
        cli, ["policy", "convert", str(converted), "--out", str(again), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((again / "report.json").read_text(encoding="utf-8"))
    assert written["policies"] == []


def test_the_summary_counts_findings_per_severity_and_names_the_weights_as_weights(
    converted: Path,
) -> None:
    report = _gaps(converted)
    by_severity = report["by_severity"]
    assert isinstance(by_severity, dict)
    result = CliRunner().invoke(cli, ["policy", "gaps", str(converted)])
    assert result.exit_code == 0, result.output
    counts = ", ".join(f"{name} {count}" for name, count in by_severity.items())
    findings = report["findings"]
    assert isinstance(findings, list)
    assert f"{len(findings)} findings ({counts})" in result.stdout
    assert "weights critical 10, high 5, medium 2, low 1" in result.stdout
    assert "(critical 10, high 5" not in result.stdout
    assert result.stderr.strip() == (
        f"severity score {report['score']} from {len(findings)} findings ({counts})"
    )
