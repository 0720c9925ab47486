"""The console's third-party browser files: fetched from the npm registry by `make
console-assets` (npm), copied with their licences into `static/vendor/`, and listed in
`static/vendor/manifest.json` (package, version, file, sha256). The copies are committed, so
serving the console needs no npm and nothing is loaded from elsewhere at run time.

    python -m api.console.vendor build   # needs npm; rewrites static/vendor/
    python -m api.console.vendor check   # every file matches the manifest (exit 1 if not)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

VENDOR = Path(__file__).parent / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"
# package, version, {file in the package: name under static/vendor/}
PACKAGES: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "htmx.org",
        "2.0.11",
        {"dist/htmx.min.js": "htmx.min.js", "LICENSE": "htmx.LICENSE.txt"},
    ),
    (
        "uplot",
        "1.6.32",
        {
            "dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "dist/uPlot.min.css": "uPlot.min.css",
            "LICENSE": "uPlot.LICENSE.txt",
        },
    ),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build() -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is required: apt-get install -y nodejs npm")
    with tempfile.TemporaryDirectory() as work:
        specs = [f"{name}@{version}" for name, version, _ in PACKAGES]
        subprocess.run(  # noqa: S603 - npm from PATH with pinned package names
            [npm, "install", "--prefix", work, "--no-save", "--no-audit", "--no-fund",
             "--ignore-scripts", "--loglevel=error", *specs],
            check=True,
        )  # fmt: skip
        for old in VENDOR.glob("*"):
            old.unlink()
        VENDOR.mkdir(parents=True, exist_ok=True)
        entries = []
        for name, version, files in PACKAGES:
            package = Path(work) / "node_modules" / name
            installed = json.loads((package / "package.json").read_text())["version"]
            if installed != version:
                sys.exit(f"{name}: npm installed {installed}, not the pinned {version}")
            for source, target in files.items():
                shutil.copyfile(package / source, VENDOR / target)
                entries.append(
                    {"package": name, "version": version, "source": source, "file": target,
                     "sha256": sha256(VENDOR / target)}
                )  # fmt: skip
    MANIFEST.write_text(json.dumps({"files": entries}, indent=2) + "\n")


def problems() -> list[str]:
    """What differs between static/vendor/ and its manifest (empty when they agree)."""
    entries = json.loads(MANIFEST.read_text())["files"]
    listed = {e["file"] for e in entries}
    found = []
    for entry in entries:
        path = VENDOR / entry["file"]
        if not path.is_file():
            found.append(f"{entry['file']}: missing")
        elif sha256(path) != entry["sha256"]:
            found.append(f"{entry['file']}: sha256 differs from the manifest")
    extra = {p.name for p in VENDOR.iterdir()} - listed - {MANIFEST.name}
    found += [f"{name}: not in the manifest" for name in sorted(extra)]
    return found


def main(argv: list[str]) -> int:
    if argv[1:] == ["build"]:
        build()
        return 0
    if argv[1:] == ["check"]:
        found = problems()
        for line in found:
            print(line)
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
