"""`acgs policy` refuses unusable options, paths and inputs with one line and exit status 2;
the progress bar counts files per second; a long run's table shows the first 50 policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from api.cli.main import cli

pytestmark = pytest.mark.rego

GOOD = (
    'POLICY orders\nRULE staff WHEN user.role == "staff" AND action == "read"\n'
    "THEN ALLOW OBLIGE audit\n"
)


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["policy", *args], catch_exceptions=False)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "orders.rules"
    path.write_text(GOOD, encoding="utf-8")
    return path


def _refused(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr


def test_bad_options_are_refused_before_anything_runs(source: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    _refused(
        _run("convert", str(source), "--out", out, "--constitutional-hash", "ABC"),
        "must be 16 lowercase hex characters",
    )
    _refused(
        _run("convert", str(source), "--out", out, "--limit", "source_bytes=lots"),
        "'source_bytes=lots': expected NAME=INTEGER",
    )
    _refused(_run("convert", str(source), "--out", out, "--limit", "no_such_bound=5"), "Invalid")
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_made_is_one_line(source: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    _refused(_run("convert", str(source), "--out", str(blocker / "out")), "cannot write to")


def test_missing_paths_are_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere")
    _refused(_run("check", missing), "nowhere")
    _refused(_run("gaps", missing), "nowhere")
    _refused(_run("eval", missing, "--input", "{}"), "nowhere")


def test_eval_refuses_an_unusable_file_policy_or_input(source: Path, tmp_path: Path) -> None:
    _refused(
        _run("eval", str(source), "--input", "{}", "--limit", "source_bytes=10"),
        "is larger than 10 bytes (limit source_bytes)",
    )
    _refused(
        _run("eval", str(source), "--input", "{}", "--policy", "payroll"),
        "no policy 'payroll' in",
    )
    _refused(
        _run("eval", str(source), "--input", f"@{tmp_path / 'absent.json'}"),
        "cannot read the input",
    )
    _refused(_run("eval", str(source), "--input", "{nope"), "--input is not JSON")
    chosen = _run(
        "eval", str(source), "--policy", "orders", "--input", '{"user": {"role": "staff"}}'
    )
    assert chosen.exit_code == 0, chosen.stderr
    assert json.loads(chosen.stdout)["policy_id"] == "orders"


def test_the_progress_bar_counts_files_per_second(source: Path, tmp_path: Path) -> None:
    shown = _run("convert", str(source), "--out", str(tmp_path / "out"), "--progress")
    assert shown.exit_code == 0, shown.stderr
    assert "files/s" in shown.stderr


def test_a_table_of_more_than_50_policies_shows_the_first_50(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(51):
        (folder / f"p{n:02}.rules").write_text(GOOD.replace("orders", f"orders{n:02}"))
    done = _run("convert", str(folder), "--out", str(tmp_path / "out"), "--jobs", "1")
    assert done.exit_code == 0, done.stderr
    assert "first 50 of 51 policies" in done.stdout
