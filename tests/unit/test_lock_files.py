"""The lock files (requirements/*.txt, `make lock`) pin every dependency of their extras with a
version pyproject.toml allows, each with hashes, and carry the fingerprint `make lint` checks."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("stamp", ROOT / "requirements" / "stamp.py")
assert _SPEC is not None
assert _SPEC.loader is not None
_STAMP = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_STAMP)
fingerprint = _STAMP.fingerprint


def _locks() -> dict[str, str]:
    """lock name -> extras, as the Makefile lists them."""
    out = subprocess.run(
        ["make", "-s", "--eval", "print-locks: ; @echo $(LOCKS)", "print-locks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return dict(lock.split(":", 1) for lock in out)


def _pins(text: str) -> dict[str, str]:
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.M)
    }


def test_every_lock_pins_every_requirement_of_its_extras_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locks = _locks()
    assert set(locks) == {"run", "run-kafka", "test"}
    environment = default_environment() | {"extra": ""}
    for name, extras in locks.items():
        text = (ROOT / "requirements" / f"{name}.txt").read_text()
        pins = _pins(text)
        wanted = [*project["dependencies"]]
        for extra in extras.split(","):
            wanted += project["optional-dependencies"][extra]
        for line in wanted:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            key = canonicalize_name(requirement.name)
            assert key in pins, (name, line)
            assert requirement.specifier.contains(pins[key], prereleases=True), (name, line)
        # every pin carries at least one hash (pip --require-hashes refuses the file otherwise)
        entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n", 2)[2])
        assert len(entries) == len(pins) > 20
        assert all("--hash=sha256:" in entry for entry in entries), name
        stamp = "# pyproject.toml dependencies sha256: " + fingerprint(
            ROOT / "pyproject.toml", extras
        )
        assert stamp in text.splitlines(), f"requirements/{name}.txt is stale: run make lock"


def test_the_fingerprint_changes_with_the_dependencies_and_the_extras(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    original = (ROOT / "pyproject.toml").read_text()
    pyproject.write_text(original)
    before = fingerprint(pyproject, "dev,embedded")
    assert fingerprint(pyproject, "embedded,dev") == before  # the order of extras does not count
    assert fingerprint(pyproject, "dev") != before
    pyproject.write_text(original.replace('"pypdf>=4"', '"pypdf>=5"'))
    assert fingerprint(pyproject, "dev,embedded") != before
    pyproject.write_text(original.replace("line-length = 100", "line-length = 99"))
    assert fingerprint(pyproject, "dev,embedded") == before  # tool settings do not count
