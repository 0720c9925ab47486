"""Shadow mode on the real database and regorus: exact agreement on a corpus with known
disagreements, alerts in the audit log, durable metrics, step guards, separation of powers,
and the automatic rollback on an injected burst of errors."""

from __future__ import annotations

from typing import Any
from uuid import uuid5

import psycopg
import pytest

from api.bootstrap import System
from commands.shadow import _ALERT_NAMESPACE, ShadowService
from domain.audit import AuditEntry
from domain.errors import Forbidden, InvalidStateTransition, NotFound, ValidationFailed
from domain.maci import MaciRole
from domain.shadow.comparison import Agreement
from domain.shadow.rollout import ShadowRollout, rollout_id
from infra.postgres.shadow_metrics import ShadowMetricsStore
from tests.integration.shadow.support import HASH, ShadowTenant, corpus, shadow_tenant
from tests.integration.spine.support import catch_up

pytestmark = [pytest.mark.postgres, pytest.mark.rego]

IVAN = ("ivan", MaciRole.IMPLEMENTER)


@pytest.fixture
def service(system: System) -> ShadowService:
    assert system.shadow is not None
    return system.shadow


@pytest.fixture
def tenant(system: System, service: ShadowService, unique: str) -> ShadowTenant:
    made = shadow_tenant(system, f"shadow-{unique}")
    service.configure(made.ctx(*IVAN), made.id, "documents", None)
    return made


def _feed(service: ShadowService, tenant: ShadowTenant, decisions: list[Any]) -> list[Any]:
    comparisons = []
    for start in range(0, len(decisions), 1000):
        compared = service.compare_live(
            tenant.principal(*IVAN), tenant.id, decisions[start : start + 1000]
        )
        comparisons += compared.comparisons
    return comparisons


def _step(service: ShadowService, tenant: ShadowTenant, target: int, prefix: str) -> None:
    _feed(service, tenant, corpus(1000, prefix=prefix))
    service.request_step(tenant.ctx(*IVAN), tenant.id, target)


def test_agreement_is_computed_exactly_on_a_corpus_with_known_disagreements(
    system: System,
    service: ShadowService,
    tenant: ShadowTenant,
    admin_conn: psycopg.Connection[Any],
) -> None:
    decisions = corpus(900, missed=40, extra=50, errors=10)

    comparisons = _feed(service, tenant, decisions)

    kinds = [c.kind for c in comparisons]
    assert kinds.count(Agreement.AGREE) == 900
    assert kinds.count(Agreement.MISSED_VIOLATION) == 40
    assert kinds.count(Agreement.EXTRA_ALLOW) == 50
    assert kinds.count(Agreement.REGO_ERROR) == 10
    assert all(c.error and "divide by zero" in c.error for c in comparisons[-10:])
    status = service.status(tenant.principal("mo", MaciRole.MONITOR), tenant.id)
    step = status["current_step"]
    assert step["decisions"] == 1000
    assert step["agreement_rate"] == 0.9
    assert step["disagreements"] == {
        "legacy_allow_rego_deny": 40,
        "legacy_deny_rego_allow": 50,
        "rego_error": 10,
    }
    assert step["missed_violations"] == 40
    assert 2.0 <= step["latency_ms"]["legacy"]["p50"] <= 7.8  # legacy latencies are 2..11 ms
    assert 10.0 <= step["latency_ms"]["legacy"]["p99"] <= 12.2
    assert step["latency_ms"]["rego"]["p50"] is not None
    series = status["all_time"]["agreement_series"]
    assert series
    assert sum(1 for _ in series) >= 1
    assert series[-1][0].endswith("+00:00")
    # each missed violation is one governance alert in the audit log
    catch_up(system)
    alerts = admin_conn.execute(
        "SELECT event_category, result, details->>'legacy_decision_id' FROM tenant_audit_log "
        "WHERE tenant_id = %s AND action = 'shadow_missed_violation'",
        [tenant.id],
    ).fetchall()
    assert len(alerts) == 40
    assert {(a[0], a[1]) for a in alerts} == {("governance", "denied")}
    assert {a[2] for a in alerts} == {f"d-{n}" for n in range(900, 940)}


def test_metrics_are_durable_a_new_process_reads_the_same(
    system: System, service: ShadowService, tenant: ShadowTenant
) -> None:
    _feed(service, tenant, corpus(300, missed=3))
    store = ShadowMetricsStore(system.app_conninfo)
    try:
        assert system.decisions is not None
        restarted = ShadowService(system.app, system.decisions, store, HASH)
        status = restarted.status(tenant.principal("mo", MaciRole.MONITOR), tenant.id)
    finally:
        store.close()
    assert status["current_step"]["decisions"] == 303
    assert status["current_step"]["missed_violations"] == 3
    assert status["percentage"] == 0


def test_a_step_up_is_refused_under_1000_decisions_then_allowed(
    service: ShadowService, tenant: ShadowTenant
) -> None:
    _feed(service, tenant, corpus(999))
    with pytest.raises(InvalidStateTransition) as refused:
        service.request_step(tenant.ctx(*IVAN), tenant.id, 25)
    assert refused.value.details["decisions"] == 999
    _feed(service, tenant, corpus(1, prefix="last"))
    assert service.request_step(tenant.ctx(*IVAN), tenant.id, 25).percentage == 25


def test_a_step_up_is_refused_under_95_percent_agreement(
    service: ShadowService, tenant: ShadowTenant
) -> None:
    _feed(service, tenant, corpus(949, extra=51))
    with pytest.raises(InvalidStateTransition) as refused:
        service.request_step(tenant.ctx(*IVAN), tenant.id, 25)
    assert refused.value.details["agreement_rate"] == 0.949


def test_each_step_is_judged_on_its_own_decisions(
    service: ShadowService, tenant: ShadowTenant
) -> None:
    _step(service, tenant, 25, "a")
    with pytest.raises(InvalidStateTransition):  # the 1,000 of step 0 do not count at 25 %
        service.request_step(tenant.ctx(*IVAN), tenant.id, 50)


def test_promotion_past_50_is_refused_for_the_requester_and_non_judicial_principals(
    service: ShadowService, tenant: ShadowTenant
) -> None:
    _step(service, tenant, 25, "a")
    _step(service, tenant, 50, "b")
    _feed(service, tenant, corpus(1000, prefix="c"))
    requester = tenant.ctx("jo", MaciRole.CONTROLLER, MaciRole.JUDICIAL)
    state = service.request_step(requester, tenant.id, 100)
    assert (state.percentage, state.pending_target, state.requested_by) == (50, 100, "jo")

    with pytest.raises(Forbidden, match="separation of powers"):
        service.approve(requester, tenant.id)
    for role in (MaciRole.EXECUTIVE, MaciRole.CONTROLLER, MaciRole.IMPLEMENTER, MaciRole.AUDITOR):
        with pytest.raises(Forbidden):
            service.approve(tenant.ctx("someone", role), tenant.id)
    assert service.state(tenant.id, fresh=True).percentage == 50  # type: ignore[union-attr]

    approved = service.approve(tenant.ctx("judy", MaciRole.JUDICIAL), tenant.id)
    assert (approved.percentage, approved.pending_target) == (100, None)


def test_an_injected_burst_of_errors_rolls_back_to_zero_with_its_evidence(
    system: System,
    service: ShadowService,
    tenant: ShadowTenant,
    admin_conn: psycopg.Connection[Any],
) -> None:
    service.configure(
        tenant.ctx(*IVAN), tenant.id, "documents", {"window_decisions": 200, "min_decisions": 50}
    )
    _step(service, tenant, 25, "a")
    calm = service.compare_live(tenant.principal(*IVAN), tenant.id, corpus(90, prefix="calm"))
    assert (calm.percentage, calm.rolled_back) == (25, None)

    burst = service.compare_live(
        tenant.principal(*IVAN), tenant.id, corpus(0, errors=12, prefix="burst")
    )

    assert burst.percentage == 0
    assert burst.rolled_back is not None
    assert burst.rolled_back["errors"] == 12
    assert burst.rolled_back["window_decisions"] == 102
    assert burst.rolled_back["rate"] == round(12 / 102, 6)
    assert burst.rolled_back["percentage_before"] == 25
    rollout = system.app.load(tenant.id, rollout_id(tenant.id), ShadowRollout)
    assert rollout.percentage == 0
    catch_up(system)
    row = admin_conn.execute(
        "SELECT actor_id, details FROM tenant_audit_log WHERE tenant_id = %s "
        "AND event_type = 'shadow_rollout.rolled_back'",
        [tenant.id],
    ).fetchone()
    assert row is not None
    assert row[0] == "system"
    assert row[1]["automatic"] is True
    assert row[1]["evidence"]["errors"] == 12
    assert row[1]["previous"] == 25


def test_no_rollback_at_zero_percent_and_a_manual_rollback_needs_traffic(
    service: ShadowService, tenant: ShadowTenant
) -> None:
    burst = service.compare_live(tenant.principal(*IVAN), tenant.id, corpus(0, errors=200))
    assert (burst.percentage, burst.rolled_back) == (0, None)
    with pytest.raises(InvalidStateTransition):
        service.roll_back(tenant.ctx(*IVAN), tenant.id, "by hand")


def test_configuration_lists_every_bad_field(service: ShadowService, tenant: ShadowTenant) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        service.configure(tenant.ctx(*IVAN), tenant.id, "", {"threshold": -1, "what": 1})
    assert {f["field"] for f in invalid.value.details["fields"]} == {
        "policy_id",
        "rollback.threshold",
        "rollback.what",
    }


def test_roles_outside_the_table_cannot_route_or_submit(
    service: ShadowService, tenant: ShadowTenant
) -> None:
    with pytest.raises(Forbidden):
        service.request_step(tenant.ctx("lee", MaciRole.LEGISLATIVE), tenant.id, 25)
    with pytest.raises(Forbidden):
        service.compare_live(tenant.principal("mo", MaciRole.MONITOR), tenant.id, corpus(1))


def test_another_tenant_sees_nothing(
    system: System, service: ShadowService, tenant: ShadowTenant, unique: str
) -> None:
    other = shadow_tenant(system, f"shadow-o-{unique}")
    with pytest.raises(NotFound):
        service.status(other.principal("mo", MaciRole.MONITOR), tenant.id)
    with pytest.raises(NotFound):  # configured for `tenant` only
        service.status(other.principal("mo", MaciRole.MONITOR), other.id)


def test_a_replayed_batch_alerts_only_the_missed_violations_not_alerted_before(
    system: System, service: ShadowService, tenant: ShadowTenant
) -> None:
    before = service.alerts
    service.compare_live(tenant.principal(*IVAN), tenant.id, corpus(0, missed=2, prefix="rp"))
    assert service.alerts == before + 2
    # the same two again with a third: only the third is new, and it is recorded
    service.compare_live(tenant.principal(*IVAN), tenant.id, corpus(0, missed=3, prefix="rp"))
    assert service.alerts == before + 3
    third = uuid5(_ALERT_NAMESPACE, f"{tenant.id}:rp-2")
    entry = system.app.load(tenant.id, third, AuditEntry)
    assert entry.details["legacy_decision_id"] == "rp-2"


def test_a_batch_is_1_to_1000_decisions_of_a_configured_tenant(
    system: System, service: ShadowService, tenant: ShadowTenant, unique: str
) -> None:
    with pytest.raises(ValidationFailed, match="give 1 to"):
        service.compare_live(tenant.principal(*IVAN), tenant.id, [])
    bare = shadow_tenant(system, f"shadow-b-{unique}")
    with pytest.raises(NotFound, match="shadow mode is not configured"):
        service.compare_live(bare.principal(*IVAN), bare.id, corpus(1))
    with pytest.raises(NotFound, match="shadow mode is not configured"):
        service.roll_back(bare.ctx(*IVAN), bare.id, "by hand")


def test_a_rollback_rule_is_an_object(service: ShadowService, tenant: ShadowTenant) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        service.configure(tenant.ctx(*IVAN), tenant.id, "documents", "fast")  # type: ignore[arg-type]
    assert invalid.value.details["fields"] == [
        {"field": "rollback", "message": "must be an object"}
    ]


def test_an_imported_decision_for_a_policy_not_active_fails_its_comparison(
    service: ShadowService, tenant: ShadowTenant
) -> None:
    [legacy] = corpus(1, prefix="imp")
    compared = service.evaluate_imported(tenant.id, "no-such-policy", legacy)
    assert compared.kind is Agreement.REGO_ERROR
    assert compared.error == "policy no-such-policy not found or not active"
