"""NDJSON files for Filebeat or Fluent Bit: one JSON record per line, appended to `path` and
flushed to disk (fsync) before a batch counts as delivered. The file is rotated (renamed to
`<path>.<UTC time>.<n>`, a new one started) when a batch would take it past `rotate_max_bytes`,
or when it is older than `rotate_max_seconds`; shippers follow rotated files by inode, so
nothing is lost in between. A record written twice (a crash before the position moved) is
deduplicated downstream on `event_id`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.sinks import DELIVERED, Delivery, DeliveryFailed, SinkRecord

ROTATE_MAX_BYTES = 100 * 1024 * 1024
ROTATE_MAX_SECONDS = 3600


class NdjsonFile:
    def __init__(self, config: dict[str, Any], *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(str(config["path"]))
        self.max_bytes = int(config.get("rotate_max_bytes", ROTATE_MAX_BYTES))
        self.max_seconds = int(config.get("rotate_max_seconds", ROTATE_MAX_SECONDS))
        self._clock = clock
        self._opened_at: float | None = None

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        data = "".join(r.json_text + "\n" for r in records).encode("utf-8")
        try:
            self._rotate_if_due(len(data))
            with self.path.open("ab") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            msg = f"cannot write {self.path.name} ({type(exc).__name__}: {exc.strerror})"
            raise DeliveryFailed(msg) from exc
        if self._opened_at is None:
            self._opened_at = self._clock()
        return DELIVERED

    def _rotate_if_due(self, incoming: int) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._opened_at = None
            return
        if self._opened_at is None:  # a file from before this process: its age counts from now
            self._opened_at = self._clock()
        too_big = size > 0 and size + incoming > self.max_bytes
        too_old = self._clock() - self._opened_at >= self.max_seconds
        if too_big or (too_old and size > 0):
            self.path.rename(self._rotated_name())
            self._opened_at = None

    def _rotated_name(self) -> Path:
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
        n = 1
        while (candidate := self.path.with_name(f"{self.path.name}.{stamp}.{n}")).exists():
            n += 1
        return candidate

    def close(self) -> None:
        pass
