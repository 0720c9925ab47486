"""The embedded server's bookkeeping without a server: where its socket goes, what a stale
postmaster.pid means, which clusters kept outside their data directory are reclaimed, and how a
failed server command is reported."""

from __future__ import annotations

import os
import subprocess  # nosec B404 - a finished child's pid, for a pid that is gone
import sys
import tempfile
from pathlib import Path

import pytest

from infra.postgres.embedded import (
    EmbeddedPostgres,
    EmbeddedPostgresError,
    _postmaster_alive,
    reclaim_orphaned_clusters,
)


def gone_pid() -> int:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as process:  # nosec B603
        process.wait()
        return process.pid


def write_pid_file(cluster: Path, pid: int, port: int = 5999) -> None:
    cluster.mkdir(parents=True, exist_ok=True)
    (cluster / "postmaster.pid").write_text(f"{pid}\n{cluster}\n0\n{port}\n")


def test_a_long_data_directory_puts_the_socket_in_the_temp_directory(tmp_path: Path) -> None:
    short = EmbeddedPostgres(tmp_path)
    assert short.socket_dir == (tmp_path / "pg").resolve()
    deep = EmbeddedPostgres(tmp_path / ("d" * 90))
    assert deep.socket_dir.parent == Path(tempfile.gettempdir())
    assert deep.socket_dir.name.startswith("acgs-pg-")
    assert deep.socket_dir == EmbeddedPostgres(tmp_path / ("d" * 90)).socket_dir  # stable
    assert len(str(deep.socket_dir / ".s.PGSQL.65535")) < 107


def test_no_url_without_a_running_server(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    with pytest.raises(EmbeddedPostgresError, match="no PostgreSQL server is running for"):
        server.url()
    write_pid_file(tmp_path / "pg", gone_pid())  # a server that died without cleaning up
    with pytest.raises(EmbeddedPostgresError):
        server.url()
    server.stop()  # not started here: nothing to stop
    assert (tmp_path / "pg" / "postmaster.pid").exists()


def test_a_postmaster_is_alive_only_while_its_process_is(tmp_path: Path) -> None:
    assert not _postmaster_alive(tmp_path / "none")
    write_pid_file(tmp_path / "dead", gone_pid())
    assert not _postmaster_alive(tmp_path / "dead")
    write_pid_file(tmp_path / "alive", os.getpid())
    assert _postmaster_alive(tmp_path / "alive")


def test_clusters_whose_data_directory_is_gone_are_reclaimed_unless_running(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    data_dir = tmp_path / "kept"
    data_dir.mkdir()
    for name, owner in [
        ("kept", data_dir),
        ("orphan", tmp_path / "deleted"),
        ("unreadable", Path("/" + "n" * 300)),  # its link cannot even be looked at
        ("running", tmp_path / "deleted-too"),
    ]:
        (shared / name).mkdir(parents=True)
        (shared / f"{name}.data-dir").write_text(f"{owner}\n")
    (data_dir / "pg").symlink_to(shared / "kept", target_is_directory=True)
    write_pid_file(shared / "running", os.getpid())

    reclaimed = reclaim_orphaned_clusters(shared)

    assert sorted(p.name for p in reclaimed) == ["orphan", "unreadable"]
    assert sorted(p.name for p in shared.iterdir()) == [
        "kept",
        "kept.data-dir",
        "running",
        "running.data-dir",
    ]
    assert reclaim_orphaned_clusters(tmp_path / "no-such-dir") == []


def test_a_cluster_reclaimed_meanwhile_by_another_start_is_passed_over(tmp_path: Path) -> None:
    """Servers starting at once (the test processes, `acgs` subprocesses) all reclaim: one may
    delete an orphan's `.data-dir` file after another listed it. That start goes on."""
    shared = tmp_path / "shared"
    (shared / "gone").mkdir(parents=True)
    # listed, then unreadable: as a file another process deleted between the two
    (shared / "gone.data-dir").symlink_to(tmp_path / "deleted-meanwhile")
    (shared / "orphan").mkdir()
    (shared / "orphan.data-dir").write_text(f"{tmp_path / 'deleted'}\n")

    reclaimed = reclaim_orphaned_clusters(shared)

    assert [p.name for p in reclaimed] == ["orphan"]


def test_a_failed_server_command_is_reported_with_its_error(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path)
    with pytest.raises(EmbeddedPostgresError) as failed:  # named by its last argument (pg_ctl's)
        server._run_as_owner(["sh", "-c", "echo 'could not start' >&2; exit 3", "start"])
    assert str(failed.value) == "start failed: could not start"
