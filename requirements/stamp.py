"""The fingerprint of what a lock file was compiled from: pyproject.toml's dependency tables and
the extras the lock holds. `make lock` writes it into each lock file and `make lint` compares it,
so a dependency added, removed or changed without `make lock` fails the lint.

    python requirements/stamp.py dev,embedded    # prints the fingerprint for those extras
"""

import hashlib
import json
import sys
import tomllib
from pathlib import Path


def fingerprint(pyproject: Path, extras: str) -> str:
    project = tomllib.loads(pyproject.read_text())["project"]
    compiled_from = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "extras": sorted(extras.split(",")),
    }
    return hashlib.sha256(json.dumps(compiled_from, sort_keys=True).encode()).hexdigest()


if __name__ == "__main__":
    print(fingerprint(Path(__file__).resolve().parent.parent / "pyproject.toml", sys.argv[1]))
