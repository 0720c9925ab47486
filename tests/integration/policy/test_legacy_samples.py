"""Every sample of tests/data/legacy_samples converts as expectations.toml says."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from commands.policy_conversion import collect_sources, read_sources, run_conversion
from domain.policy.conversion import ConversionStatus
from domain.policy.sources import SourceFormat
from infra.rego.regorus_engine import RegorusEngine

pytestmark = pytest.mark.rego
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "legacy_samples"
EXPECTATIONS: dict[str, dict[str, str]] = tomllib.loads(
    (SAMPLES / "expectations.toml").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def statuses() -> dict[str, dict[str, str]]:
    sources = read_sources(collect_sources([SAMPLES], SourceFormat.AUTO))
    found: dict[str, dict[str, str]] = {}
    for result in run_conversion(sources, RegorusEngine, jobs=1):
        found.setdefault(Path(result.source).name, {})[result.policy_id] = result.status.value
    return found


def test_there_are_at_least_40_samples_in_every_format_with_an_expectation_each() -> None:
    files = [
        path for path in SAMPLES.iterdir() if path.suffix in (".json", ".yaml", ".yml", ".rules")
    ]
    assert len(files) >= 40
    assert {path.name for path in files} == set(EXPECTATIONS)
    kinds = Counter(path.name.split("_")[0] for path in files)
    assert set(kinds) == {"dsl", "json", "yaml", "iam"}
    assert {status for expected in EXPECTATIONS.values() for status in expected.values()} == {
        status.value for status in ConversionStatus
    }


@pytest.mark.parametrize("sample", sorted(EXPECTATIONS))
def test_each_sample_converts_as_expected(sample: str, statuses: dict[str, dict[str, str]]) -> None:
    assert statuses.get(sample) == EXPECTATIONS[sample]
