"""`acgs migrate` in-process on the session's database: the refusals (a bad --config, a path
outside the allowed directories, an unknown job) and a job that fails while the CLI waits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from click.testing import CliRunner

from api.cli.main import cli
from api.settings import Settings
from tests.integration.decision_import.conftest import csv_text, row

pytestmark = pytest.mark.postgres


def _run(settings: Settings, *args: str) -> Any:
    env = {"ACGS_DATABASE_URL": str(settings.database_url), "ACGS_DATA_DIR": str(settings.data_dir)}
    return CliRunner().invoke(cli, ["migrate", *args], env=env)


@pytest.mark.parametrize("config", ["{not json", "[1, 2]"])
def test_the_config_must_be_a_json_object(settings: Settings, config: str) -> None:
    result = _run(settings, "start", "--tenant", "any", "--config", config)
    assert result.exit_code == 2
    assert "must be a JSON object" in result.output


def test_a_server_side_path_outside_the_allowed_directories_is_refused(
    settings: Settings, create_tenant: Any
) -> None:
    tenant = create_tenant()
    result = _run(settings, "start", "--tenant", tenant.tenant_slug, "--path", "/etc")
    assert result.exit_code == 1
    assert "VALIDATION_ERROR" in result.output
    assert "source_config.policy_file_path" in result.output


@pytest.mark.parametrize("command", ["status", "results"])
def test_an_unknown_job_is_not_found(settings: Settings, create_tenant: Any, command: str) -> None:
    tenant = create_tenant()
    result = _run(settings, command, "--tenant", tenant.tenant_slug, str(uuid4()))
    assert result.exit_code == 1
    assert "NOT_FOUND" in result.output


def test_a_job_that_fails_while_the_cli_waits_exits_1_and_its_results_say_why(
    settings: Settings, create_tenant: Any, tmp_path: Path
) -> None:
    tenant = create_tenant()
    log = tmp_path / "latin1.csv"
    good = csv_text([row(n) for n in range(1, 501)]).encode()  # past the first block read
    log.write_bytes(good + "D-9,2025-01-01,Jos\xe9\n".encode("latin-1"))

    started = _run(
        settings, "start", "--tenant", tenant.tenant_slug, "--type", "decision_log_import",
        "--file", str(log), "--wait",
    )  # fmt: skip

    assert started.exit_code == 1
    first, _, rest = started.stdout.partition("\n")
    job_id = first.split()[1]
    outcome = json.loads(rest)
    assert (outcome["job_status"], outcome["error_details"]) == (
        "failed",
        "SourceUnreadable: the source is not UTF-8 text (after record 450)",
    )
    results = _run(settings, "results", "--tenant", tenant.tenant_slug, job_id)
    assert results.exit_code == 0, results.output
    assert json.loads(results.stdout)["job_status"] == "failed"
