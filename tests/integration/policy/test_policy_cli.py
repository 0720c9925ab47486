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
    # By hand from the gap rules: both legacy sources lack the constitutional guard (GAP-004,
    # critical, weight 10); `orders` allows with no time bound (GAP-009, low, weight 1) and its
    # allow carries `audit` (no GAP-005); `legacy`'s only allow is the unconvertible script rule.
    assert report["by_rule"] == {"GAP-004": 2, "GAP-009": 1}
    assert report["by_severity"] == {"critical": 2, "high": 0, "medium": 0, "low": 1}
    assert report["score"] == 21


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


UNPROVEN = (
    "POLICY mail\n"
    'RULE admins WHEN user.email MATCHES "^[a-z]+@acme\\\\.com$" AND user.email MATCHES "^admin"\n'
    "THEN ALLOW\n"
    'RULE blocked WHEN user.email ENDS WITH "@spam.example" THEN DENY\n'
)
HARD = (
    'POLICY hard RULE r1 WHEN user.a MATCHES "a{300}" THEN ALLOW '
    'RULE r2 WHEN user.a MATCHES "a{300}" THEN DENY\n'
)


def test_a_policy_with_a_rule_no_request_reaches_is_unproven_counted_and_named(
    tmp_path: Path,
) -> None:
    source = tmp_path / "mail.rules"
    source.write_text(UNPROVEN, encoding="utf-8")
    (tmp_path / "orders.rules").write_text(GOOD, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["policy", "convert", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 converted, 1 unproven, 0 partial, 0 failed" in result.output
    assert "unproven mail: rule(s) never reached: admins" in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["totals"]["unproven"] == 1
    assert report["totals"]["converted"] == 1
    [mail] = [entry for entry in report["policies"] if entry["policy_id"] == "mail"]
    assert mail["status"] == "unproven"
    assert mail["gate"]["unreached_rules"] == ["admins"]
    assert (mail["gate"]["rules_reached"], mail["gate"]["rules_reachable"]) == (1, 2)
    assert "admins" in mail["recommendation"]
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| policies | converted | unproven | partial | failed |" in markdown
    assert "| `mail` |" in markdown
    assert "| unproven |" in markdown
    strict = CliRunner().invoke(
        cli, ["policy", "convert", str(source), "--out", str(tmp_path / "o2"), "--strict"]
    )
    assert strict.exit_code == 1


def test_uncovered_branches_are_listed_once(tmp_path: Path) -> None:
    source = tmp_path / "hard.rules"
    source.write_text(HARD, encoding="utf-8")
    out = tmp_path / "out"
    CliRunner().invoke(cli, ["policy", "convert", str(source), "--out", str(out)])
    [entry] = json.loads((out / "report.json").read_text(encoding="utf-8"))["policies"]
    branches = [w["message"] for w in entry["warnings"] if w["code"] == "GATE_BRANCH_NOT_COVERED"]
    assert branches == ['user.a matches "a{300}" never true (rule r1, r2)']
    assert entry["gate"]["uncovered_branches"] == 1
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert markdown.count("never true") == 1


def test_a_failed_policy_counts_no_converted_rules(tmp_path: Path) -> None:
    source = tmp_path / "r.rules"
    source.write_text('POLICY r RULE bad WHEN user.a MATCHES "a(" THEN ALLOW\n', encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["policy", "convert", str(source), "--out", str(out)])
    [entry] = json.loads((out / "report.json").read_text(encoding="utf-8"))["policies"]
    assert entry["status"] == "failed"
    assert (entry["rules_converted"], entry["rules_total"]) == (0, 1)
    assert "0/1" in result.output
    assert "1/1" not in result.output


def test_a_policy_over_its_time_budget_is_failed_with_the_reason(tmp_path: Path) -> None:
    source = tmp_path / "orders.rules"
    source.write_text(GOOD, encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "policy",
            "convert",
            str(source),
            "--out",
            str(out),
            "--limit",
            "conversion_milliseconds=1",
        ],
    )
    assert result.exit_code == 0, result.output
    [entry] = json.loads((out / "report.json").read_text(encoding="utf-8"))["policies"]
    assert entry["status"] == "failed"
    assert entry["errors"][0]["code"] == "CONVERSION_TIME_BUDGET_EXCEEDED"
    assert "budget of 0.001 s" in entry["errors"][0]["message"]
    assert not (out / "orders.rego").exists()


def test_the_cap_on_gate_inputs_is_configurable_and_reported(tmp_path: Path) -> None:
    source = tmp_path / "orders.rules"
    source.write_text(GOOD, encoding="utf-8")
    out = tmp_path / "out"
    CliRunner().invoke(
        cli, ["policy", "convert", str(source), "--out", str(out), "--limit", "gate_inputs=2"]
    )
    [entry] = json.loads((out / "report.json").read_text(encoding="utf-8"))["policies"]
    assert entry["gate"]["requests"] == 2
    assert entry["gate"]["inputs_capped"] is True
    assert entry["status"] == "unproven"
    assert "GATE_INPUT_LIMIT_REACHED" in {w["code"] for w in entry["warnings"]}


def test_a_batch_writes_every_module_with_its_text_and_none_of_a_failed_policy(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(12):  # enough for the module writes to go through several threads
        text = f"POLICY p{number}\nRULE r WHEN user.level > {number} THEN ALLOW\n"
        (folder / f"p{number}.rules").write_text(text, encoding="utf-8")
    (folder / "broken.rules").write_text("POLICY broken\nRULE r WHEN THEN\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["policy", "convert", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    modules = sorted(path.name for path in out.glob("*.rego"))
    assert modules == sorted(f"p{number}.rego" for number in range(12))
    for number in range(12):
        module = (out / f"p{number}.rego").read_text(encoding="utf-8")
        assert f"package acgs.policies.p{number}\n" in module
        assert f"input.user.level > {number}\n" in module
    statuses = {entry["policy_id"]: entry["status"] for entry in report["policies"]}
    assert statuses.pop("broken") == "failed"
    assert set(statuses.values()) == {"converted"}
