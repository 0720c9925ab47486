"""The console's policy pages refuse what they must, over plain HTTP: a source given twice or not
at all, a file that is not text, a wrong constitutional hash, a policy or version that does not
exist, an activation without a version number, a retirement not confirmed, and a sample input
that is not a JSON object or names no policy. Real app and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from domain.maci import MaciRole
from tests.e2e.console_http import Console, by_id, console_of, new_tenant
from tests.e2e.policy_support import rego, submitted
from tests.peers.http import Api

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def tenant(api: Api) -> UUID:
    with api.client(api.token(MaciRole.EXECUTIVE)) as platform:
        tenant_id = new_tenant(api, platform, "cpf")
        submitted(platform, tenant_id, rego("doc", "owner"))
    api.wait_projected()
    return tenant_id


@pytest.fixture
def author(api: Api, tenant: UUID) -> Iterator[Console]:
    console = console_of(api, MaciRole.LEGISLATIVE, tenant_id=tenant)
    yield console
    console.close()


def test_a_source_is_given_once_as_text_or_file(author: Console, tenant: UUID) -> None:
    both = author.post(
        f"/tenants/{tenant}/policies",
        {"source": rego("two", "owner")},
        files={"file": ("p.rego", rego("two", "owner").encode(), "text/plain")},
    )
    assert both.status_code == 422
    assert by_id(both, "file-error") == "give the source as text or as a file, not both"
    assert by_id(both, "source") == ""  # the file is not sent back
    empty = author.post(f"/tenants/{tenant}/policies", {"source": "  "})
    assert empty.status_code == 422
    assert by_id(empty, "source-error") == "give the policy's source here, or choose a file"
    binary = author.post(
        f"/tenants/{tenant}/policies",
        {"source": ""},
        files={"file": ("p.rego", b"\xff\xfe\x00bad", "application/octet-stream")},
    )
    assert binary.status_code == 422
    assert by_id(binary, "file-error")


def test_a_wrong_constitutional_hash_is_the_form_s_error(author: Console, tenant: UUID) -> None:
    wrong = author.post(
        f"/tenants/{tenant}/policies",
        {"source": rego("hashy", "owner"), "constitutional_hash": "0" * 16},
    )
    assert wrong.status_code == 422
    assert "hash" in (by_id(wrong, "form-error") or "")


def test_a_missing_policy_or_version_is_not_found(author: Console, tenant: UUID) -> None:
    base = f"/tenants/{tenant}/policies"
    assert author.get(f"{base}/nothing-here").status_code == 404
    assert author.get(f"{base}/a%00b").status_code == 404
    pending = author.get(f"{base}/nothing-here", params={"since": "1"})
    assert pending.status_code == 200  # just written: the page reloads itself
    assert (by_id(pending, "pending") or "").startswith("The policy is saved")
    assert author.get(f"{base}/doc/versions/1").status_code == 200
    assert author.get(f"{base}/doc/versions/9").status_code == 404
    assert author.get(f"{base}/doc/versions/0").status_code == 404
    assert author.get(f"{base}/a%00b/versions/1").status_code == 404


def test_activate_and_retire_check_their_fields(author: Console, tenant: UUID) -> None:
    base = f"/tenants/{tenant}/policies/doc"
    for version in ("", "x", "0", str(2**31)):
        refused = author.post(f"{base}/activate", {"version": version})
        assert refused.status_code == 422, version
        assert "version number" in (by_id(refused, "error-message") or "")
    unconfirmed = author.post(f"{base}/retire", {})
    assert unconfirmed.status_code == 422
    assert "tick the box" in (by_id(unconfirmed, "error-message") or "")


def test_a_sample_input_is_a_json_object_for_a_policy_that_exists(
    author: Console, tenant: UUID
) -> None:
    base = f"/tenants/{tenant}/policies"
    listed = author.post(f"{base}/doc/evaluate", {"input": "[1, 2]"})
    assert listed.status_code == 422
    assert "must be a JSON object" in listed.text
    assert by_id(listed, "input") == "[1, 2]"  # the whole page again, the input kept
    missing = author.post(
        f"{base}/nothing-here/evaluate", {"input": "{}"}, headers={"HX-Request": "true"}
    )
    assert missing.status_code == 200  # htmx swaps only the decision box
    assert "policy" in missing.text.lower()
    assert "<html" not in missing.text
