"""Scratch directories for the project's own servers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temp dir the embedded server's `postgres` user can enter (pytest's temp root and
    `TemporaryDirectory` are private to root, which would send the cluster to
    /var/lib/acgs-postgres); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
