"""`acgs policy eval POLICY_FILE --input JSON`, run as a user runs it: the same decisions as the
reference evaluator, the line and column of a source that does not convert, exit statuses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from domain.policy.reference_evaluator import evaluate
from domain.policy.rule_model import Policy
from domain.policy.sources import parse_source
from tests.e2e.policy_support import SAMPLES
from tests.peers.http import HASH
from tests.peers.serve import ACGS

pytestmark = pytest.mark.e2e


def _eval(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ACGS, "policy", "eval", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        check=False,
    )


def test_eval_decides_like_the_reference_evaluator() -> None:
    sample = SAMPLES / "yaml_00_finance.yaml"
    [policy] = [p for p in parse_source(sample.name, sample.read_text()) if isinstance(p, Policy)]
    document = {
        "user": {"kind": "service", "scopes": ["finance:read"], "department": "finance"},
        "context": {"mtls": True},
        "action": "read",
    }
    done = _eval(str(sample), "--input", json.dumps(document))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    expected = evaluate(policy, {**document, "constitutional_hash": HASH}, HASH)
    assert answer["allow"] == expected.allow
    assert sorted(answer["deny"]) == sorted(expected.deny)
    assert answer["policy_id"] == policy.policy_id
    assert answer["constitutional_hash"] == HASH
    wrong = _eval(
        str(sample), "--input", "-", stdin=json.dumps({**document, "constitutional_hash": "0" * 16})
    )
    assert wrong.returncode == 0, wrong.stderr
    assert json.loads(wrong.stdout)["deny"] == ["constitutional hash mismatch"]


def test_eval_refuses_what_does_not_convert_with_line_and_column(tmp_path: Path) -> None:
    done = _eval(str(SAMPLES / "dsl_20_syntax_error.rules"), "--input", "{}")
    assert done.returncode == 2
    assert "does not convert (line " in done.stderr
    two = tmp_path / "two.rules"
    two.write_text(
        (SAMPLES / "dsl_00_finance.rules").read_text()
        + "\n"
        + (SAMPLES / "dsl_01_hr.rules").read_text()
    )
    several = _eval(str(two), "--input", "{}")
    assert several.returncode == 2
    assert "finance-records, hr-records" in several.stderr
    chosen = _eval(str(two), "--input", "{}", "--policy", "hr-records")
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["policy_id"] == "hr-records"
    bad_input = tmp_path / "input.json"
    bad_input.write_text("[1, 2]")
    refused = _eval(str(SAMPLES / "json_00_finance.json"), "--input", f"@{bad_input}")
    assert refused.returncode == 2
    assert "must be a JSON object" in refused.stderr


def test_eval_of_a_rego_that_fails_on_the_input_exits_1(tmp_path: Path) -> None:
    module = tmp_path / "fragile.rego"
    module.write_text(
        "package acgs.custom.fragile\n\n"
        f'constitutional_hash := "{HASH}"\n\n'
        "default allow := false\n\n"
        "allow if {\n\tinput.constitutional_hash == constitutional_hash\n"
        "\tto_number(input.amount) > 10\n}\n\n"
        'deny contains "constitutional hash mismatch" if '
        "input.constitutional_hash != constitutional_hash\n\n"
        "obligations := set()\n"
    )
    ok = _eval(str(module), "--input", '{"amount": "11"}')
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["allow"] is True
    failed = _eval(str(module), "--input", '{"amount": "eleven"}')
    assert failed.returncode == 1
    assert "evaluation failed" in failed.stderr
    assert failed.stdout == ""
