"""The console's vendored browser files match their manifest: every listed file present with its
sha256, each package with its licence, nothing unlisted, and nothing the pages load comes from
elsewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from api.console import vendor

TEMPLATES = Path(vendor.__file__).parent / "templates"


def test_the_vendored_files_match_the_manifest() -> None:
    assert vendor.problems() == []


def test_every_package_ships_its_licence_and_its_pinned_version() -> None:
    entries = json.loads(vendor.MANIFEST.read_text())["files"]
    for name, version, files in vendor.PACKAGES:
        mine = [e for e in entries if e["package"] == name]
        assert {e["version"] for e in mine} == {version}
        assert {e["file"] for e in mine} == set(files.values())
        assert any(e["source"] == "LICENSE" for e in mine), name


def test_a_changed_or_extra_file_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "vendor"
    copy.mkdir()
    for path in vendor.VENDOR.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(vendor, "VENDOR", copy)
    monkeypatch.setattr(vendor, "MANIFEST", copy / "manifest.json")
    (copy / "htmx.min.js").write_bytes(b"alert(1)")
    (copy / "extra.js").write_text("")
    (copy / "uPlot.min.css").unlink()
    assert vendor.problems() == [
        "htmx.min.js: sha256 differs from the manifest",
        "uPlot.min.css: missing",
        "extra.js: not in the manifest",
    ]
    assert vendor.main(["vendor", "check"]) == 1


def test_the_pages_load_nothing_from_elsewhere() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', text):
            assert url.startswith(("/console", "#")), (template.name, url)
