"""Each gap's remediation on the gaps page: the catalogue's policy in the rule DSL, and the Rego
the converter makes of it, the same text `docs/gap-rules.md` shows for every catalogue rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.console.gap_pages import remediation
from domain.policy.gaps.catalogue import CATALOGUE, GapRule

DOCS = (Path(__file__).resolve().parents[3] / "docs" / "gap-rules.md").read_text()
HASH = "cdd01ef066bc6cf2"


def _documented(rule_id: str) -> tuple[str, str]:
    section = DOCS.split(f"## {rule_id} ", 1)[1].split("\n## ", 1)[0]
    [dsl] = re.findall(r"```\n(.*?)```", section, re.DOTALL)
    [rego] = re.findall(r"```rego\n(.*?)```", section, re.DOTALL)
    return dsl, rego


@pytest.mark.parametrize("rule", CATALOGUE, ids=lambda rule: rule.id)
def test_the_snippets_are_the_documented_ones(rule: GapRule) -> None:
    dsl, rego = remediation(rule.id, HASH)
    assert dsl == rule.remediation_policy
    assert (dsl.rstrip("\n"), rego.rstrip("\n")) == tuple(
        part.rstrip("\n") for part in _documented(rule.id)
    )


def test_the_rego_carries_the_deployments_hash() -> None:
    _, rego = remediation("GAP-001", "0123456789abcdef")
    assert 'constitutional_hash := "0123456789abcdef"' in rego
