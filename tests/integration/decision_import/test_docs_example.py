"""docs/decision-import.md's example runs as printed: its Python imports its CSV into the test
database and prints the batches and the result summary the page shows."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "decision-import.md"

pytestmark = pytest.mark.postgres


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_documented_example_prints_the_documented_result(
    pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [sample] = _blocks("csv")
    [program] = _blocks("python")
    [printed_batches] = _blocks("text")
    [documented] = [json.loads(b) for b in _blocks("json") if b.startswith('{"rows"')]
    (tmp_path / "legacy.csv").write_text(sample, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACGS_DATABASE_URL", pg_admin_url)
    monkeypatch.setenv("ACGS_DATA_DIR", str(tmp_path / "data"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(program, str(DOC), "exec"), {"__name__": "docs_example"})  # noqa: S102
    *batches, report = out.getvalue().splitlines()
    assert "\n".join(batches) == printed_batches.strip()
    result = ast.literal_eval(report)
    for conflict in result["conflicts_listed"]:
        assert len(conflict.pop("dedup_key")) == 64
    for conflict in documented["conflicts_listed"]:
        conflict.pop("dedup_key")
    assert result == documented
