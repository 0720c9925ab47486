"""An S3 object store for the test session (moto's server, `python -m moto.server`, keeping its
objects in its own memory) on a free 127.0.0.1 port, stopped by its PID at the end. A broker
that keeps its topics in a bucket of it (`TansuBroker(storage_engine="s3://bucket/")`) can be
killed and started again with its topics and messages intact."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from infra.kafka.local_broker import TansuBroker
from tests.peers.http import free_port, wait_for


@dataclass
class S3Store:
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, timeout=30)

    def _answers(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(self.url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def bucket(self) -> str:
        """A new empty bucket's name."""
        name = f"b-{uuid.uuid4().hex[:12]}"
        response = httpx.put(f"{self.url}/{name}", timeout=10)
        assert response.status_code == 200, response.text
        return name

    def broker(self, log_path: Path) -> TansuBroker:
        """A broker (not started) keeping its topics in a new bucket of this store."""
        return TansuBroker(
            log_path=log_path,
            storage_engine=f"s3://{self.bucket()}/",
            storage_env={
                "AWS_ENDPOINT": self.url,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "test",  # moto accepts any key
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1",
            },
        )


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    store = S3Store(free_port(), tmp_path_factory.mktemp("s3") / "moto.log")
    try:
        store.start()
        yield store
    finally:
        store.stop()
