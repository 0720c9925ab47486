"""The embedded PostgreSQL of the `embedded` profile: one server per data directory.

Debian's server binaries are used when present and running as root (they are on this project's
machines); otherwise the `pgserver` wheel, which ships its own binaries. The server listens on a
Unix socket only. A second process pointed at the same data directory (the CLI while `acgs serve`
runs) finds the running server through `postmaster.pid` and connects to it instead of starting
another; only the process that started the server stops it.

Where the cluster's files live: in `ACGS_DATA_DIR/pg`, so deleting the data directory deletes
the data. The one exception is forced by PostgreSQL refusing to run as root: as root the server
runs as the `postgres` user, and when that user cannot enter the data directory (it sits under a
private directory such as /root), the cluster is kept in /var/lib/acgs-postgres/<digest of the
data directory's path>, `ACGS_DATA_DIR/pg` is a link to it, and `<digest>.data-dir` beside it
names its data directory. Such a cluster whose data directory is gone (or links elsewhere) and
that is not running is deleted by the next start of any embedded server, before anything else;
`make clean-data` deletes it at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DATABASE_NAME = "acgs"
SUPERUSER = "postgres"
_DEBIAN_ROOT = Path("/usr/lib/postgresql")
_SHARED_CLUSTERS = Path("/var/lib/acgs-postgres")
_OWNER_SUFFIX = ".data-dir"  # beside a cluster kept outside its data directory: that directory
_SOCKET_PATH_LIMIT = 100  # Unix socket paths are limited to 107 bytes including the file name.


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started or reached."""


def debian_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL server binaries, if installed."""
    if not _DEBIAN_ROOT.is_dir():
        return None
    versions = sorted(
        (p for p in _DEBIAN_ROOT.iterdir() if (p / "bin" / "postgres").exists()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    return versions[-1] / "bin" if versions else None


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose cluster lives in `data_dir / "pg"`."""

    data_dir: Path
    started_here: bool = field(default=False, init=False)
    _pgserver: object | None = field(default=None, init=False, repr=False)

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def socket_dir(self) -> Path:
        preferred = self.cluster_dir.resolve()
        if len(str(preferred)) < _SOCKET_PATH_LIMIT - 20:
            return preferred
        digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"acgs-pg-{digest}"

    def url(self, user: str = SUPERUSER, dbname: str = DATABASE_NAME) -> str:
        port = self._running_port()
        if port is None:
            msg = f"no PostgreSQL server is running for {self.cluster_dir}"
            raise EmbeddedPostgresError(msg)
        return f"postgresql://{user}@/{dbname}?host={quote(str(self.socket_dir))}&port={port}"

    def start(self) -> str:
        """Start the server unless one already runs on this data; return the superuser URL."""
        if self._running_port() is None:
            bin_dir = debian_bin_dir()
            if bin_dir is not None and os.geteuid() == 0:
                self._start_debian(bin_dir)
            else:
                self._start_pgserver()
            self.started_here = True
        self._ensure_database()
        return self.url()

    def stop(self) -> None:
        """Stop the server if this process started it."""
        if not self.started_here:
            return
        bin_dir = debian_bin_dir()
        if self._pgserver is not None:
            cleanup = getattr(self._pgserver, "cleanup", None)
            if callable(cleanup):
                cleanup()
        elif bin_dir is not None:
            self._run_as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.cluster_dir.resolve()),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ]
            )
        self.started_here = False

    def _running_port(self) -> int | None:
        pid_file = self.cluster_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        socket = self.socket_dir / f".s.PGSQL.{port}"
        deadline = time.monotonic() + 10
        while not socket.exists():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return port

    def _start_debian(self, bin_dir: Path) -> None:
        reclaim_orphaned_clusters()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.cluster_dir.exists() and not _server_user_can_reach(self.data_dir):
            # The server runs as `postgres`, which cannot traverse a private parent (say /root or
            # pytest's 0700 temp root): keep the cluster where it can, linked from the data dir.
            digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
            elsewhere = _SHARED_CLUSTERS / digest
            elsewhere.mkdir(parents=True, exist_ok=True)
            _SHARED_CLUSTERS.chmod(0o755)
            (_SHARED_CLUSTERS / f"{digest}{_OWNER_SUFFIX}").write_text(
                f"{self.data_dir.resolve()}\n"
            )
            self.cluster_dir.symlink_to(elsewhere, target_is_directory=True)
        cluster = self.cluster_dir.resolve()
        if not (cluster / "PG_VERSION").exists():
            cluster.mkdir(parents=True, exist_ok=True)
            shutil.chown(cluster, user="postgres", group="postgres")
            cluster.chmod(0o700)
            initdb = [
                str(bin_dir / "initdb"),
                "-D",
                str(cluster),
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ]
            self._run_as_owner(initdb)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.socket_dir, user="postgres", group="postgres")
        port = _free_port()
        options = (
            f"-p {port} -c listen_addresses='' -k {self.socket_dir} "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        self._run_as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(cluster),
                "-w",
                "-s",
                "-l",
                str(cluster / "server.log"),
                "-o",
                options,
                "start",
            ]
        )

    def _start_pgserver(self) -> None:
        try:
            import pgserver  # noqa: PLC0415 - optional, only for non-root embedded runs
        except ImportError as exc:
            msg = (
                "no PostgreSQL server binaries: install Debian's postgresql package (as root) "
                "or the pgserver wheel (pip install 'acgs-enterprise[embedded]')"
            )
            raise EmbeddedPostgresError(msg) from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        get_server = pgserver.get_server  # type: ignore[attr-defined]
        self._pgserver = get_server(self.cluster_dir, cleanup_mode="stop")

    def _ensure_database(self) -> None:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.url(dbname="postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def _run_as_owner(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        # In a session of its own: a Ctrl-C on the terminal (SIGINT to the whole foreground
        # process group) reaches only the service, which then stops the server in order.
        result = subprocess.run(  # noqa: S603
            argv, capture_output=True, text=True, check=False, start_new_session=True
        )
        if result.returncode != 0:
            msg = f"{Path(argv[-1]).name if argv else 'postgres'} failed: {result.stderr.strip()}"
            raise EmbeddedPostgresError(msg)


def reclaim_orphaned_clusters(shared: Path = _SHARED_CLUSTERS) -> list[Path]:
    """Delete the clusters kept outside their data directory whose data directory no longer
    links to them and that are not running; returns what was deleted."""
    reclaimed: list[Path] = []
    if not shared.is_dir():
        return reclaimed
    for owner in shared.glob(f"*{_OWNER_SUFFIX}"):
        cluster = shared / owner.name.removesuffix(_OWNER_SUFFIX)
        try:
            link = Path(owner.read_text().strip()) / "pg"
        except FileNotFoundError:  # another server's start reclaimed it meanwhile
            continue
        try:
            owned = link.is_symlink() and link.resolve() == cluster.resolve()
        except OSError:
            owned = False
        if owned or _postmaster_alive(cluster):
            continue
        shutil.rmtree(cluster, ignore_errors=True)
        owner.unlink(missing_ok=True)
        reclaimed.append(cluster)
    return reclaimed


def _postmaster_alive(cluster: Path) -> bool:
    try:
        pid = int((cluster / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _server_user_can_reach(path: Path) -> bool:
    probe = ["runuser", "-u", "postgres", "--", "test", "-x", str(path.resolve())]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0  # noqa: S603


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
