"""The console's vendored browser files match their manifest: every listed file present with its
sha256, each package with its licence, nothing unlisted, and nothing the pages load comes from
elsewhere."""

from __future__ import annotations

import json
import re
import runpy
import sys
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


FAKE_NPM = """#!{python}
import json, pathlib, sys
args = sys.argv[1:]
prefix = pathlib.Path(args[args.index("--prefix") + 1])
for spec in (a for a in args if "@" in a[1:]):
    name, version = spec.rsplit("@", 1)
    package = prefix / "node_modules" / name
    (package / "dist").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({{"version": "{served}" or version}}))
    for source in ("dist/htmx.min.js", "dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"):
        (package / source).write_text(f"{{name}} {{source}}")
"""


def _npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: str = "") -> Path:
    """An `npm` on PATH that installs the asked packages from nothing (files naming themselves),
    at the version asked or at `served`; and a vendor folder of the test's own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable, served=served))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    copy = tmp_path / "vendor"
    copy.mkdir()
    (copy / "stale.js").write_text("old")
    monkeypatch.setattr(vendor, "VENDOR", copy)
    monkeypatch.setattr(vendor, "MANIFEST", copy / "manifest.json")
    return copy


def test_build_copies_the_pinned_files_and_writes_their_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = _npm(tmp_path, monkeypatch)
    assert vendor.main(["vendor", "build"]) == 0
    assert not (copy / "stale.js").exists()
    assert (copy / "htmx.LICENSE.txt").read_text() == "htmx.org LICENSE"
    entries = json.loads(vendor.MANIFEST.read_text())["files"]
    assert [e["file"] for e in entries] == [
        "htmx.min.js",
        "htmx.LICENSE.txt",
        "uPlot.iife.min.js",
        "uPlot.min.css",
        "uPlot.LICENSE.txt",
    ]
    assert entries[0]["sha256"] == vendor.sha256(copy / "htmx.min.js")
    assert vendor.main(["vendor", "check"]) == 0


def test_build_refuses_a_version_other_than_the_pinned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _npm(tmp_path, monkeypatch, served="9.9.9")
    refusal = r"htmx\.org: npm installed 9\.9\.9, not the pinned 2\.0\.11"
    with pytest.raises(SystemExit, match=refusal):
        vendor.build()


def test_build_needs_npm_and_the_module_says_how_it_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit, match="npm is required"):
        vendor.build()
    assert vendor.main(["vendor", "publish"]) == 2
    assert "python -m api.console.vendor check" in capsys.readouterr().out


def test_run_as_a_module_it_exits_with_the_check_s_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["vendor", "check"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(vendor.__file__, run_name="__main__")
    assert done.value.code == 0
