"""`acgs serve` as a user runs it: a child process on a free port and a data directory of its
own, its stdout read line by line, stopped by its PID."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.peers.http import free_port, wait_for

ACGS = [sys.executable, "-c", "from api.cli.main import cli; cli()"]


def acgs_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACGS_")}
    env.update(ACGS_DATA_DIR=str(data_dir), ACGS_HTTP_PORT=str(port), ACGS_LOG_LEVEL="WARNING")
    env.update(extra)
    return env


@dataclass
class ServeProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    args: tuple[str, ...] = ()
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    _arrived: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return acgs_env(self.data_dir, self.port)

    def start(self) -> ServeProcess:
        self.process = subprocess.Popen(
            [*ACGS, "serve", *self.args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()
        return self

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._arrived.put(line.rstrip("\n"))
        self._arrived.put(None)

    def wait_for_line(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if text in line:
                    return line
            if time.monotonic() > deadline:
                pytest.fail(f"acgs serve never printed {text!r}: {self.lines}")
            try:
                arrived = self._arrived.get(timeout=0.5)
            except queue.Empty:
                continue
            if arrived is None:
                pytest.fail(f"acgs serve ended before printing {text!r}: {self.lines}")
            self.lines.append(arrived)

    def wait_for_lines(self, text: str, count: int, timeout: float = 90) -> list[str]:
        """The first `count` lines containing `text`, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if text in line]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                pytest.fail(
                    f"acgs serve printed {text!r} {len(found)} of {count} times: {self.lines}"
                )
            try:
                arrived = self._arrived.get(timeout=0.5)
            except queue.Empty:
                continue
            if arrived is None:
                pytest.fail(
                    f"acgs serve ended before printing {text!r} {count} times: {self.lines}"
                )
            self.lines.append(arrived)

    def wait_ready(self) -> ServeProcess:
        self.wait_for_line("listening on")
        wait_for(self._answers, timeout=30)
        return self

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def bootstrap_token(self) -> str:
        index = next(i for i, line in enumerate(self.lines) if "platform EXECUTIVE token" in line)
        return self.lines[index + 1]

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        """Send `sig` and wait; kill (and fail the caller's checks) if it does not exit."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = -signal.SIGKILL
        if self._pump is not None:
            self._pump.join(timeout=10)
        while True:
            try:
                rest = self._arrived.get_nowait()
            except queue.Empty:
                break
            if rest is not None:
                self.lines.append(rest)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for every purpose here
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains `text` (say, a data directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found
