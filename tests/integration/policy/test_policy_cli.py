"""`acgs policy convert | check | gaps` through click, on real files and the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import cli

pytestmark = pytest.mark.rego

GOOD = (
    'POLICY orders\nRULE staff WHEN user.role == "staff" AND action == "read"\n'
    "THEN ALLOW OBLIGE audit\n"
)
PARTIAL = json.dumps(
    {
        "policy_id": "legacy",
        "rules": [
            {
                "id": "ok",
                "effect": "deny",
                "when": {"field": "action", "op": "eq", "value": "drop"},
            },
            {"id": "code", "effect": "allow", "when": {"op": "script", "value": "x()"}},
        ],
    }
)


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "orders.rules").write_text(GOOD, encoding="utf-8")
    (folder / "legacy.json").write_text(PARTIAL, encoding="utf-8")
    return folder


def test_convert_writes_one_module_per_policy_and_both_reports(
    sources: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["policy", "convert", str(sources), "--out", str(out), "--tenant", "acme", "--jobs", "1"],
    )
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "legacy.rego",
        "orders.rego",
        "report.json",
        "report.md",
    ]
    assert "package acgs.tenants.acme.orders" in (out / "orders.rego").read_text(encoding="utf-8")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    statuses = {entry["policy_id"]: entry["status"] for entry in report["policies"]}
    assert statuses == {"legacy": "partial", "orders": "converted"}
    assert report["totals"]["constitutional_compliance_rate"] == 1.0
    assert report["totals"]["rules_converted"] == 2
    assert report["totals"]["rules_total"] == 3


def test_strict_mode_exits_non_zero_when_a_policy_is_partial(sources: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["policy", "convert", str(sources), "--out", str(tmp_path / "o"), "--strict"]
    )
    assert result.exit_code == 1


def test_the_constitutional_hash_comes_from_the_option_or_the_environment(
    sources: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o"
    result = CliRunner().invoke(
        cli,
        ["policy", "convert", str(sources / "orders.rules"), "--out", str(out)],
        env={"CONSTITUTIONAL_HASH": "0123456789abcdef"},
    )
    assert result.exit_code == 0, result.output
    assert '"0123456789abcdef"' in (out / "orders.rego").read_text(encoding="utf-8")


def test_a_missing_source_is_a_one_line_error_with_exit_status_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["policy", "convert", str(tmp_path / "nope.rules"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "no such file or directory" in result.output
    assert "Traceback" not in result.output


def test_an_unreadable_file_is_a_one_line_error(tmp_path: Path) -> None:
    binary = tmp_path / "bad.rules"
    binary.write_bytes(b"\xff\xfe\x00POLICY")
    result = CliRunner().invoke(
        cli, ["policy", "convert", str(binary), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_check_passes_converted_output_and_fails_an_edited_module(
    sources: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    CliRunner().invoke(cli, ["policy", "convert", str(sources), "--out", str(out)])
    assert CliRunner().invoke(cli, ["policy", "check", str(out)]).exit_code == 0
    module = out / "orders.rego"
    module.write_text(
        module.read_text(encoding="utf-8").replace('== "staff"', '!= "staff"'), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["policy", "check", str(out)])
    assert result.exit_code == 1
    assert "FAIL" in result.output


def test_gaps_reports_findings_and_score_as_json(sources: Path) -> None:
    result = CliRunner().invoke(cli, ["policy", "gaps", str(sources), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["policies_analysed"] == 2
    assert report["score"] == sum(
        {"critical": 10, "high": 5, "medium": 2, "low": 1}[finding["severity"]]
        for finding in report["findings"]
    )
    assert "GAP-004" in report["by_rule"]


def test_convert_with_two_jobs_gives_the_same_report_as_one(sources: Path, tmp_path: Path) -> None:
    for index in range(30):
        (sources / f"extra-{index}.rules").write_text(
            GOOD.replace("orders", f"orders-{index}"), encoding="utf-8"
        )
    reports = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = CliRunner().invoke(
            cli, ["policy", "convert", str(sources), "--out", str(out), "--jobs", jobs]
        )
        assert result.exit_code == 0, result.output
        reports.append((out / "report.json").read_text(encoding="utf-8"))
    assert reports[0] == reports[1]
