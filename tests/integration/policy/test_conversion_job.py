"""The policy_conversion kind of migration job driven through the job port (validate, open,
next_batch) on the in-memory event store and the real Rego engine: sources it refuses, files it
cannot read, strict mode, and a retired policy that takes no new version."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import GovernanceApplication
from commands.migration_kinds import BatchOutcome, JobContext, JobSource
from commands.policies import owner_of
from commands.policy_conversion_job import PolicyConversionKind
from domain.constitution import DEFAULT_CONSTITUTIONAL_HASH
from domain.errors import ValidationFailed
from domain.events import Actor, EventMeta
from domain.policy.limits import DEFAULT_LIMITS
from domain.registry.policy import PolicyStatus, TenantPolicy, policy_aggregate_id
from infra.rego.regorus_engine import RegorusEngine
from tests.integration.policy.test_policy_cli import UNPROVEN

pytestmark = pytest.mark.rego

HASH = DEFAULT_CONSTITUTIONAL_HASH
MEMORY = {"PERSISTENCE_MODULE": "infra.memory.event_store:InMemoryFactory"}
GOOD = "POLICY orders\nRULE r WHEN user.level > {level} THEN ALLOW\n"


@pytest.fixture
def app() -> GovernanceApplication:
    return GovernanceApplication(env=MEMORY)


def _kind(app: GovernanceApplication, **kw: Any) -> PolicyConversionKind:
    return PolicyConversionKind(app, HASH, RegorusEngine, **kw)


def _run(kind: PolicyConversionKind, source: Path, tenant: UUID, **config: Any) -> BatchOutcome:
    parameters = kind.validate(config, JobSource(source, source.name))
    context = JobContext(
        tenant,
        uuid4(),
        kind.name,
        parameters,
        JobSource(source, source.name),
        "migrator@example.com",
        None,
        source.parent,
    )
    cursor = kind.open(context)
    try:
        outcomes = []
        while (outcome := cursor.next_batch()) is not None:
            outcomes.append(outcome)
    finally:
        cursor.close()
    return outcomes[-1]


def _problems(error: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(p["field"], p["message"]) for p in error.value.details["fields"]]


def test_a_source_that_is_missing_empty_or_too_large_is_refused(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    kind = _kind(app, limits=replace(DEFAULT_LIMITS, batch_files=2))
    empty = tmp_path / "empty"
    empty.mkdir()
    many = tmp_path / "many"
    many.mkdir()
    for n in range(3):
        (many / f"p{n}.rules").write_text(GOOD.format(level=n), encoding="utf-8")
    for source, message in (
        (tmp_path / "gone", "no such file or directory"),
        (empty, "holds no legacy policy file"),
        (many, "3 source files in one batch, more than the 2 allowed"),
    ):
        with pytest.raises(ValidationFailed) as err:
            kind.validate({}, JobSource(source, source.name))
        [(field, text)] = _problems(err)
        assert field == "file"
        assert message in text


def test_a_job_without_a_source_cannot_be_opened(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    context = JobContext(uuid4(), uuid4(), "policy_conversion", {}, None, "m", None, tmp_path)
    with pytest.raises(ValidationFailed, match="the job has no source"):
        _kind(app).open(context)


def test_unreadable_files_fail_alone_and_strict_mode_writes_only_proven_conversions(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    source = tmp_path / "legacy"
    source.mkdir()
    (source / "broken.rules").write_bytes(b"POLICY x\xff\xfe")
    (source / "mail.rules").write_text(UNPROVEN, encoding="utf-8")
    (source / "orders.rules").write_text(GOOD.format(level=3), encoding="utf-8")

    last = _run(_kind(app), source, uuid4(), batch_size=1)

    assert {k: last.summary[k] for k in ("files", "policies", "written", "failed_items")} == {
        "files": 3,
        "policies": 2,
        "written": 1,
        "failed_items": 2,
    }


def test_each_failure_is_named_with_what_to_do(app: GovernanceApplication, tmp_path: Path) -> None:
    source = tmp_path / "legacy"
    source.mkdir()
    (source / "broken.rules").write_bytes(b"POLICY x\xff\xfe")
    (source / "mail.rules").write_text(UNPROVEN, encoding="utf-8")
    kind = _kind(app)
    parameters = kind.validate({"batch_size": 5}, JobSource(source, "legacy"))
    context = JobContext(
        uuid4(), uuid4(), kind.name, parameters, JobSource(source, "legacy"), "m", None, tmp_path
    )
    cursor = kind.open(context)
    try:
        outcome = cursor.next_batch()
    finally:
        cursor.close()
    assert outcome is not None
    assert (outcome.failed[0].item, outcome.failed[0].error, outcome.failed[0].recommendation) == (
        "broken.rules",
        "cannot read broken.rules: not UTF-8 text",  # named as in the source, not by server path
        "Make the file readable UTF-8.",
    )
    [unproven] = outcome.failed[1:]
    assert unproven.item == "mail (mail.rules)"
    assert unproven.error == "conversion unproven: not written under validation_mode strict"


def test_a_retired_policy_takes_no_new_version_and_is_named_a_failure(
    app: GovernanceApplication, tmp_path: Path
) -> None:
    tenant = uuid4()
    source = tmp_path / "orders.rules"
    source.write_text(GOOD.format(level=1), encoding="utf-8")
    first = _run(_kind(app), source, tenant)
    assert first.summary["new_versions"] == 1
    owner, _ = owner_of(tenant)
    policy = app.load(owner, policy_aggregate_id(owner, "orders"), TenantPolicy)
    policy.retire(EventMeta(tenant, Actor("admin"), HASH))
    app.save_for(owner, policy)
    source.write_text(GOOD.format(level=2), encoding="utf-8")

    again = _run(_kind(app), source, tenant)

    assert (again.summary["new_versions"], again.summary["failed_items"]) == (0, 1)
    [refused] = again.failed
    assert (refused.item, refused.error, refused.recommendation) == (
        "orders (orders.rules)",
        "the policy is retired: it takes no new version",
        "Register it anew.",
    )
    kept = app.load(owner, policy_aggregate_id(owner, "orders"), TenantPolicy)
    assert kept.status is PolicyStatus.RETIRED
