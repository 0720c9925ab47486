"""CLI tables written to a pipe or a file carry whole rows, never cut at 80 columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from api.cli.main import cli

pytestmark = [pytest.mark.rego]

LONG_NAME = "a_policy_module_with_a_name_long_enough_to_be_cut_at_eighty_columns_by_a_narrow_table"


def test_policy_check_writes_whole_rows_when_not_a_terminal(tmp_path: Path) -> None:
    (tmp_path / f"{LONG_NAME}.rego").write_text(
        "package acgs.long_names\n\nimport rego.v1\n\ndefault allow := false\n"
    )
    result = CliRunner().invoke(cli, ["policy", "check", str(tmp_path)], env={"COLUMNS": ""})
    assert f"{LONG_NAME}.rego" in result.output, result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) > 80
