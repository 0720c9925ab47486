"""Break-glass accounts: scrypt hashes only, the right password and account verify, anything
else does not; a malformed file is refused with its name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.maci import MaciRole
from infra.break_glass import BreakGlassAccounts, BreakGlassFileError, hash_password


def _file(tmp_path: Path, **account: object) -> Path:
    path = tmp_path / "bg.json"
    base = {
        "tenant_slug": "acme",
        "username": "Root",
        "password_scrypt": hash_password("s3cret"),
        "maci_roles": ["EXECUTIVE", "AUDITOR"],
    }
    path.write_text(json.dumps({"accounts": [{**base, **account}]}))
    return path


def test_only_the_right_account_and_password_verify(tmp_path: Path) -> None:
    accounts = BreakGlassAccounts.from_file(_file(tmp_path))
    assert accounts.verify("acme", "root", "s3cret") == (MaciRole.EXECUTIVE, MaciRole.AUDITOR)
    assert accounts.verify("acme", "root", "s3cret!") is None
    assert accounts.verify("other", "root", "s3cret") is None
    assert accounts.verify("acme", "nobody", "s3cret") is None


def test_the_hash_is_salted_and_never_the_password() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second
    assert "s3cret" not in first
    assert first.startswith("scrypt$16384$8$1$")


@pytest.mark.parametrize(
    "account", [{"maci_roles": []}, {"maci_roles": ["KING"]}], ids=["no-role", "unknown-role"]
)
def test_a_malformed_file_is_refused(tmp_path: Path, account: dict[str, object]) -> None:
    with pytest.raises(BreakGlassFileError, match=r"bg\.json"):
        BreakGlassAccounts.from_file(_file(tmp_path, **account))


def test_a_stored_value_that_is_no_scrypt_hash_lets_nobody_in(tmp_path: Path) -> None:
    accounts = BreakGlassAccounts.from_file(_file(tmp_path, password_scrypt="s3cret"))
    assert accounts.verify("acme", "root", "s3cret") is None
