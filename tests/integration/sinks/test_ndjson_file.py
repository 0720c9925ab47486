"""The NDJSON file sink on a real file system: the sink contract (the reader deduplicates on
`event_id`, as Filebeat's pipeline would), rotation by size and by time with nothing lost across
rotated files, and an unwritable path reported as a batch failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from domain.sinks import DeliveryFailed, Sink
from infra.sinks.ndjson_file import NdjsonFile
from tests.integration.sinks.contract import SinkContract, records


def _lines(folder: Path, name: str) -> list[dict[str, Any]]:
    """Every record in the rotated files (oldest first), then the current file."""
    rotated = sorted(p for p in folder.iterdir() if p.name.startswith(name + "."))
    files = [*rotated, folder / name] if (folder / name).exists() else rotated
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


class TestNdjsonFile(SinkContract):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.folder = tmp_path

    def open(self, **overrides: Any) -> Sink:
        return NdjsonFile({"path": str(self.folder / "audit.ndjson")} | overrides)

    def received(self) -> list[str]:
        seen: dict[str, None] = {}
        for body in self.received_bodies():
            seen.setdefault(body["event_id"], None)
        return list(seen)

    def received_bodies(self) -> list[dict[str, Any]]:
        return _lines(self.folder, "audit.ndjson")


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_file_rotates_by_size_and_nothing_is_lost(tmp_path: Path) -> None:
    batch = records(40)
    one = batch[0].size + 1
    sink = NdjsonFile({"path": str(tmp_path / "a.ndjson"), "rotate_max_bytes": one * 10 + 5})
    for start in range(0, 40, 4):
        sink.deliver(batch[start : start + 4])
    files = sorted(tmp_path.iterdir())
    assert len(files) == 5  # 8 records per file fit under ten records' bytes
    assert all(f.stat().st_size <= one * 10 + 5 for f in files)
    assert [b["event_id"] for b in _lines(tmp_path, "a.ndjson")] == [r.event_id for r in batch]


def test_the_file_rotates_by_age(tmp_path: Path) -> None:
    clock = Clock()
    sink = NdjsonFile({"path": str(tmp_path / "a.ndjson"), "rotate_max_seconds": 60}, clock=clock)
    sink.deliver(records(2))
    clock.now += 59
    sink.deliver(records(2, start=3))
    assert len(list(tmp_path.iterdir())) == 1
    clock.now += 1
    sink.deliver(records(2, start=5))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.ndjson", "a.ndjson.20260528T202740Z.1"]
    assert len(_lines(tmp_path, "a.ndjson")) == 6


def test_an_unwritable_path_is_a_batch_failure(tmp_path: Path) -> None:
    sink = NdjsonFile({"path": str(tmp_path / "missing" / "a.ndjson")})
    with pytest.raises(DeliveryFailed, match="FileNotFoundError"):
        sink.deliver(records(1))
