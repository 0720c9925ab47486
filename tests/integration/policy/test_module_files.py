"""Modules written while the conversion goes on (`ModuleFiles`) end as `write_outputs` alone
would leave them, whatever order the chunks end in; on real files and the real engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commands.policy_conversion import (
    ModuleFiles,
    SourceText,
    run_conversion,
    write_outputs,
)
from domain.policy.conversion import ConversionSettings, ConversionStatus, PolicyResult
from infra.rego.regorus_engine import RegorusEngine

pytestmark = pytest.mark.rego


def _source(name: str, policy_id: str, level: int) -> SourceText:
    text = f"POLICY {policy_id}\nRULE r WHEN user.level > {level} THEN ALLOW\n"
    return SourceText(name, text)


def _results() -> list[PolicyResult]:
    """Twelve policies; `dup` twice (the second fails) and `a-b` against `a_b` (same package:
    the second fails)."""
    sources = [_source(f"p{n}.rules", f"p{n}", n) for n in range(10)]
    sources[3:3] = [_source("first.rules", "dup", 100)]
    sources += [
        _source("second.rules", "dup", 200),
        _source("dash.rules", "a-b", 1),
        _source("underscore.rules", "a_b", 2),
    ]
    results = run_conversion(sources, RegorusEngine, jobs=1)
    statuses = {(r.source, r.status) for r in results}
    assert ("second.rules", ConversionStatus.FAILED) in statuses
    assert ("underscore.rules", ConversionStatus.FAILED) in statuses
    return results


def _directory(out: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(out.glob("*.rego"))}


@pytest.fixture(scope="module")
def results() -> list[PolicyResult]:
    return _results()


@pytest.mark.parametrize("arrival", ["source order", "reversed", "failed ones only first"])
def test_the_directory_holds_exactly_the_modules_write_outputs_alone_writes(
    results: list[PolicyResult], tmp_path: Path, arrival: str
) -> None:
    plain = tmp_path / "plain"
    write_outputs(results, plain, settings=ConversionSettings(), engine_name="regorus")
    # What the chunks gave before duplicates were failed: the second `dup` and `a_b` had modules.
    early = _as_converted(results)
    if arrival == "reversed":
        early.reverse()
    elif arrival == "failed ones only first":
        early.sort(key=lambda r: r.source not in {"second.rules", "underscore.rules"})
    out = tmp_path / "early"
    with ModuleFiles(out) as files:
        for start in range(0, len(early), 5):  # chunk by chunk
            files.add(early[start : start + 5])
        write_outputs(
            results,
            out,
            settings=ConversionSettings(),
            engine_name="regorus",
            module_files=files,
        )
    written = _directory(out)
    assert written == _directory(plain)
    assert "dup.rego" in written
    assert "level > 100\n" in written["dup.rego"]  # the first `dup`, not the failed second
    assert "a_b.rego" not in written  # the file written early for the failed one is gone
    assert sorted(written) == sorted(f"{r.policy_id}.rego" for r in results if r.rego)
    assert (out / "report.json").read_text(encoding="utf-8") == (plain / "report.json").read_text(
        encoding="utf-8"
    )


def _as_converted(results: list[PolicyResult]) -> list[PolicyResult]:
    """The results as their chunks gave them: the duplicates still with their modules."""
    again = run_conversion(
        [
            SourceText(r.source, _TEXTS[r.source])
            for r in results
            if r.source in {"second.rules", "underscore.rules"}
        ],
        RegorusEngine,
        jobs=1,
    )
    assert all(r.rego is not None for r in again)
    return [r for r in results if r.rego is not None] + again


_TEXTS = {
    "second.rules": "POLICY dup\nRULE r WHEN user.level > 200 THEN ALLOW\n",
    "underscore.rules": "POLICY a_b\nRULE r WHEN user.level > 2 THEN ALLOW\n",
}


def test_chunks_written_during_a_two_job_run_end_as_a_plain_write(tmp_path: Path) -> None:
    sources = [_source(f"p{n}.rules", f"p{n}", n) for n in range(60)]
    sources.append(_source("late.rules", "p7", 700))  # a duplicate in the last chunk
    out = tmp_path / "out"
    with ModuleFiles(out) as files:
        results = run_conversion(sources, RegorusEngine, jobs=2, on_results=files.add)
        write_outputs(
            results, out, settings=ConversionSettings(), engine_name="regorus", module_files=files
        )
    written = _directory(out)
    assert sorted(written) == sorted(f"p{n}.rego" for n in range(60))
    for number in range(60):
        assert f"input.user.level > {number}\n" in written[f"p{number}.rego"]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["totals"]["failed"] == 1


def test_a_module_that_cannot_be_written_is_an_error_when_the_outputs_are_settled(
    results: list[PolicyResult], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "p4.rego").mkdir()  # a directory where the module of p4 goes
    with ModuleFiles(out) as files:
        files.add(results)
        with pytest.raises(IsADirectoryError):
            write_outputs(
                results,
                out,
                settings=ConversionSettings(),
                engine_name="regorus",
                module_files=files,
            )
