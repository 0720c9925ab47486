"""The embedded cluster's files belong to ACGS_DATA_DIR: deleting the data directory deletes the
data, also as root when the cluster has to live outside it (the `postgres` user cannot enter a
private directory such as /root)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
import pytest

from infra.postgres.embedded import EmbeddedPostgres, debian_bin_dir

pytestmark = [pytest.mark.slow]

SHARED = Path("/var/lib/acgs-postgres")


def _tables(server: EmbeddedPostgres) -> set[str]:
    with psycopg.connect(server.url()) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {str(r[0]) for r in rows}


def test_a_data_directory_deleted_and_made_again_starts_empty(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    data_dir = private / "acgs"
    first = EmbeddedPostgres(data_dir)
    cluster = None
    try:
        first.start()
        cluster = (data_dir / "pg").resolve()
        if os.geteuid() == 0 and debian_bin_dir() is not None:
            assert (data_dir / "pg").is_symlink()
            assert cluster.parent == SHARED
            assert (SHARED / f"{cluster.name}.data-dir").read_text().strip() == str(data_dir)
        else:
            assert cluster == data_dir / "pg"
        with psycopg.connect(first.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE precious (id int)")
        assert "precious" in _tables(first)
        first.stop()
        shutil.rmtree(data_dir)  # what a user does to delete the data

        second = EmbeddedPostgres(data_dir)  # same path, say a fresh `make run`
        second.start()
        try:
            assert "precious" not in _tables(second)
        finally:
            second.stop()
    finally:
        first.stop()
        if cluster is not None and cluster.parent == SHARED:
            shutil.rmtree(cluster, ignore_errors=True)
            (SHARED / f"{cluster.name}.data-dir").unlink(missing_ok=True)
