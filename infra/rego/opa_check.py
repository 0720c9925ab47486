"""`opa check --strict` over written modules, when an `opa` binary is on PATH (it is optional)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


class OpaStrictChecker:
    """Runs one `opa check --strict --format json` over many files; errors grouped by file."""

    def __init__(self, binary: str) -> None:
        self.binary = binary

    @classmethod
    def from_path(cls) -> OpaStrictChecker | None:
        binary = shutil.which("opa")
        return cls(binary) if binary else None

    def check(self, files: Sequence[Path]) -> dict[str, str]:
        if not files:
            return {}
        completed = subprocess.run(  # noqa: S603 - fixed binary, file arguments only
            [
                self.binary,
                "check",
                "--strict",
                "--v1-compatible",
                "--format",
                "json",
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if completed.returncode == 0:
            return {}
        return _errors_by_file(completed.stdout or completed.stderr, files)


def _errors_by_file(output: str, files: Sequence[Path]) -> dict[str, str]:
    try:
        errors = json.loads(output).get("errors", [])
    except (ValueError, AttributeError):
        return {
            str(file): output.strip().splitlines()[0] if output.strip() else "opa check failed"
            for file in files
        }
    found: dict[str, str] = {}
    for item in errors:
        location = item.get("location") or {}
        file = str(location.get("file", ""))
        where = f"{location.get('row', 0)}:{location.get('col', 0)}"
        found.setdefault(file, f"opa check --strict: {where}: {item.get('message', '')}")
    return found
