"""The toolkit's `check` over a directory of modules and `gaps` over sources, called directly on
real files and the real engine: modules without their sources, modules that do not compile or
are too large, sources that are gone or hold a policy that does not parse."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from pathlib import Path

import pytest

from commands import policy_conversion
from commands.policy_conversion import (
    BatchTooLarge,
    SourceNotFound,
    SourceText,
    check_directory,
    convert_chunk,
    find_gaps,
    read_sources,
    run_conversion,
    write_outputs,
)
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.policy.conversion import ConversionSettings, ConversionStatus
from domain.policy.limits import DEFAULT_LIMITS
from domain.policy.sources import SourceFormat
from infra.rego.regorus_engine import RegorusEngine

pytestmark = pytest.mark.rego

HASH = DEFAULT_CONSTITUTIONAL_HASH
GOOD = 'POLICY orders\nRULE staff WHEN user.role == "staff" THEN ALLOW\n'
MIXED = json.dumps(
    {
        "policies": [
            {"policy_id": "ok", "rules": [{"id": "r", "effect": "allow"}]},
            {"policy_id": "bad", "rules": [{"id": "r", "effect": "maybe"}]},
        ]
    }
)
UNGUARDED = "package bare\n\nallow := true\n\ndeny := []\n\nobligations := []\n"
OVERSIZED = "#" * (DEFAULT_LIMITS.source_bytes + 1)


def _convert(sources: Path, out: Path) -> None:
    files = sorted(sources.iterdir())
    results = run_conversion(read_sources(files), RegorusEngine, jobs=1)
    write_outputs(results, out, settings=ConversionSettings(), engine_name="regorus")


def _checked(directory: Path) -> dict[str, tuple[str, bool, str]]:
    return {
        Path(r.file).name: (r.package, r.passed, r.message)
        for r in check_directory(directory, RegorusEngine(), HASH)
    }


def test_modules_without_a_report_are_compiled_and_their_guard_verified(tmp_path: Path) -> None:
    sources, out = tmp_path / "src", tmp_path / "out"
    sources.mkdir()
    (sources / "orders.rules").write_text(GOOD, encoding="utf-8")
    _convert(sources, out)
    (out / "report.json").unlink()
    (out / "bare.rego").write_text(UNGUARDED, encoding="utf-8")
    (out / "nameless.rego").write_text("allow := true\n", encoding="utf-8")
    (out / "huge.rego").write_text(OVERSIZED, encoding="utf-8")

    checked = _checked(out)

    assert checked["orders.rego"][1:] == (True, "compiles; constitutional guard holds")
    assert checked["bare.rego"] == ("bare", False, "constitutional guard missing")
    assert checked["nameless.rego"][:2] == ("", False)
    assert checked["huge.rego"] == (
        "",
        False,
        "source is larger than the 4,194,304 bytes allowed (4,194,305 bytes)",
    )
    with pytest.raises(SourceNotFound):
        check_directory(tmp_path / "missing", RegorusEngine(), HASH)


def test_a_report_naming_sources_gone_or_unparsable_checks_what_it_can(tmp_path: Path) -> None:
    sources, out = tmp_path / "src", tmp_path / "out"
    sources.mkdir()
    (sources / "orders.rules").write_text(GOOD, encoding="utf-8")
    (sources / "mixed.json").write_text(MIXED, encoding="utf-8")
    _convert(sources, out)
    (sources / "orders.rules").unlink()

    checked = _checked(out)

    assert checked["ok.rego"][1:] == (True, "equal to its source")
    assert checked["orders.rego"][1:] == (True, "compiles; constitutional guard holds")
    assert "bad.rego" not in checked


def test_gaps_skip_what_cannot_be_analysed_and_refuse_missing_or_too_many_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "mixed.json").write_text(MIXED, encoding="utf-8")
    (tmp_path / "huge.rego").write_text(OVERSIZED, encoding="utf-8")
    (tmp_path / "small.rego").write_text("package small\n\nallow := true\n", encoding="utf-8")

    _, analysed = find_gaps([tmp_path])

    assert analysed == 2  # the policy that parses and the module within bounds
    with pytest.raises(SourceNotFound):
        find_gaps([tmp_path / "missing.rules"])
    with pytest.raises(BatchTooLarge):
        find_gaps([tmp_path], limits=replace(DEFAULT_LIMITS, batch_files=2))


def test_a_chunk_needs_an_engine_and_leaves_a_disabled_collector_disabled() -> None:
    chunk = [SourceText("orders.rules", GOOD)]
    with pytest.raises(RuntimeError, match="no Rego engine in this worker"):
        convert_chunk(chunk, SourceFormat.AUTO, ConversionSettings())
    gc.disable()
    try:
        [result] = convert_chunk(chunk, SourceFormat.AUTO, ConversionSettings(), RegorusEngine())
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert result.status is ConversionStatus.CONVERTED


class _RefusesOrders:
    """A strict checker that refuses `orders.rego` (and names a file that was not written)."""

    def check(self, files: list[Path]) -> dict[str, str]:
        refused = {str(f): "rego_type_error: undefined ref" for f in files if f.stem == "orders"}
        return {**refused, "/elsewhere/other.rego": "not ours"}


def test_a_module_the_strict_checker_refuses_fails_and_its_file_is_removed(
    tmp_path: Path,
) -> None:
    sources = [SourceText("orders.rules", GOOD), SourceText("mixed.json", MIXED)]
    results = run_conversion(sources, RegorusEngine, jobs=1)

    outcome = write_outputs(
        results,
        tmp_path,
        settings=ConversionSettings(),
        engine_name="regorus",
        strict_checker=_RefusesOrders(),
    )

    statuses = {r.policy_id: r.status for r in outcome.results}
    assert statuses == {
        "orders": ConversionStatus.FAILED,
        "ok": ConversionStatus.CONVERTED,
        "bad": ConversionStatus.FAILED,
    }
    [orders] = [r for r in outcome.results if r.policy_id == "orders"]
    assert orders.errors[-1].code == "OPA_CHECK_FAILED"
    assert [p.name for p in outcome.written] == ["ok.rego"]
    assert sorted(p.name for p in tmp_path.glob("*.rego")) == ["ok.rego"]


def test_a_source_longer_than_its_size_says_is_read_only_up_to_the_bound() -> None:
    limits = replace(DEFAULT_LIMITS, source_bytes=16)
    [read] = read_sources([Path("/dev/zero")], limits)  # stat says 0 bytes; it never ends
    assert (read.text, read.size) == ("", 17)


def test_a_pool_worker_converts_with_the_engine_its_initializer_built() -> None:
    policy_conversion._init_worker(RegorusEngine)
    try:
        [result] = convert_chunk(
            [SourceText("o.rules", GOOD)], SourceFormat.AUTO, ConversionSettings()
        )
    finally:
        policy_conversion._worker_engine = None
    assert result.status is ConversionStatus.CONVERTED
