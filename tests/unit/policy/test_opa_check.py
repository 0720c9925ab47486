"""`opa check --strict` over written modules: the errors of its JSON report grouped by file, and
its plain-text failures given to every file. The `opa` here is a script on PATH that answers as
the real binary does (opa is an optional tool the test machines do not carry)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.rego.opa_check import OpaStrictChecker


def install_opa(bin_dir: Path, stdout: str, status: int, stderr: str = "") -> Path:
    """An `opa` that records its arguments and answers with `stdout`, `stderr` and `status`."""
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "out").write_text(stdout)
    (bin_dir / "err").write_text(stderr)
    script = bin_dir / "opa"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{bin_dir}/argv"\n'
        f'cat "{bin_dir}/out"; cat "{bin_dir}/err" >&2\n'
        f"exit {status}\n"
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return [tmp_path / "a.rego", tmp_path / "b.rego"]


def test_no_opa_on_path_means_no_checker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert OpaStrictChecker.from_path() is None


def test_clean_modules_and_no_modules_have_no_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[Path]
) -> None:
    install_opa(tmp_path / "bin", "", 0)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    checker = OpaStrictChecker.from_path()
    assert checker is not None
    assert checker.check([]) == {}
    assert not (tmp_path / "bin" / "argv").exists()  # nothing to check: opa is not run
    assert checker.check(files) == {}
    argv = (tmp_path / "bin" / "argv").read_text().split()
    assert argv == ["check", "--strict", "--v1-compatible", "--format", "json", *map(str, files)]


def test_the_first_error_of_each_file_is_kept(tmp_path: Path, files: list[Path]) -> None:
    report = {
        "errors": [
            {
                "message": "unused variable x",
                "location": {"file": str(files[0]), "row": 3, "col": 5},
            },
            {"message": "second", "location": {"file": str(files[0]), "row": 9, "col": 1}},
            {"message": "no location"},
        ]
    }
    checker = OpaStrictChecker(str(install_opa(tmp_path / "bin", json.dumps(report), 1)))
    assert checker.check(files) == {
        str(files[0]): "opa check --strict: 3:5: unused variable x",
        "": "opa check --strict: 0:0: no location",
    }


@pytest.mark.parametrize(
    ("stdout", "stderr", "message"),
    [
        (
            "",
            "error: unknown flag --v1-compatible\nusage: ...",
            "error: unknown flag --v1-compatible",
        ),
        ("[1, 2]", "", "[1, 2]"),
        ("", "", "opa check failed"),
    ],
)
def test_output_that_is_not_a_report_is_every_files_error(
    tmp_path: Path, files: list[Path], stdout: str, stderr: str, message: str
) -> None:
    checker = OpaStrictChecker(str(install_opa(tmp_path / "bin", stdout, 2, stderr)))
    assert checker.check(files) == {str(file): message for file in files}
