"""The conversion report: per policy and totals, as JSON and as Markdown."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from domain.policy.conversion import ConversionStatus, PolicyResult


def totals(results: Sequence[PolicyResult]) -> dict[str, Any]:
    statuses = Counter(result.status.value for result in results)
    rules_total = sum(result.rules_total for result in results)
    rules_converted = sum(
        result.rules_converted for result in results if result.status is not ConversionStatus.FAILED
    )
    compliant = sum(1 for result in results if result.constitutional_compliant)
    return {
        "policies": len(results),
        "converted": statuses.get("converted", 0),
        "unproven": statuses.get("unproven", 0),
        "partial": statuses.get("partial", 0),
        "failed": statuses.get("failed", 0),
        "rules_converted": rules_converted,
        "rules_total": rules_total,
        "warnings": sum(len(result.warnings) for result in results),
        "errors": sum(len(result.errors) for result in results),
        "constitutional_compliance_rate": round(compliant / len(results), 4) if results else 1.0,
    }


def report_json(
    results: Sequence[PolicyResult], constitutional_hash: str, engine: str
) -> dict[str, Any]:
    return {
        "constitutional_hash": constitutional_hash,
        "engine": engine,
        "totals": totals(results),
        "policies": [result.as_json() for result in results],
    }


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(results: Sequence[PolicyResult], constitutional_hash: str, engine: str) -> str:
    summary = totals(results)
    lines = [
        "# Policy conversion report",
        "",
        f"Constitutional hash `{constitutional_hash}`; gate engine: {engine}.",
        "",
        "| policies | converted | unproven | partial | failed | rules converted / total | "
        "constitutional compliance |",
        "|---|---|---|---|---|---|---|",
        f"| {summary['policies']} | {summary['converted']} | {summary['unproven']} | "
        f"{summary['partial']} | {summary['failed']} | "
        f"{summary['rules_converted']} / {summary['rules_total']} | "
        f"{summary['constitutional_compliance_rate']:.2%} |",
        "",
        "| policy | source | status | rules | warnings | errors | recommendation |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| `{_cell(result.policy_id)}` | {_cell(result.source)} | {result.status.value} | "
            f"{result.rules_converted} / {result.rules_total} | {len(result.warnings)} | "
            f"{len(result.errors)} | {_cell(result.recommendation)} |"
        )
    detailed = [result for result in results if result.errors or result.warnings]
    if detailed:
        lines += ["", "## Findings", ""]
    for result in detailed:
        lines.append(f"### `{_cell(result.policy_id)}` ({result.status.value})")
        lines.append("")
        lines.extend(f"- {_cell(item)}" for item in (*result.errors, *result.warnings))
        counterexample = result.gate.get("counterexample")
        if counterexample:
            lines += ["", "Counterexample:", "", "```json", _json(counterexample), "```"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
