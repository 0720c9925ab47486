"""The sink runner on fakes of its ports: batching by count and bytes, retries of only what was
refused, dead letters after the attempts run out, tenant scope, alerts that do not wait, and a
runner killed mid-batch resuming from its last confirmed position."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.sinks import (
    DELIVERED,
    Delivery,
    DeliveryFailed,
    EventFacts,
    FailedSignIns,
    Severity,
    SinkRecord,
    batches,
    classify,
    enrich,
    retry_delay,
)
from domain.tenancy import SYSTEM_TENANT_ID
from projections.sinks.runner import SinkRunner, SinkSettings, SinkStopped

TENANT = UUID("11111111-1111-1111-1111-111111111111")
OTHER = UUID("22222222-2222-2222-2222-222222222222")


@dataclass
class FakeLog:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    pos: int = 0
    name: str = field(default_factory=lambda: f"sink_{uuid4().hex}")
    advances: list[int] = field(default_factory=list)

    def add(self, tenant: UUID, *, result: str = "success", event_type: str = "x.done") -> None:
        n = len(self.rows) + 1
        self.rows.append((n, uuid4(), 1, event_type, result.encode(), tenant, datetime.now(UTC)))

    def position(self) -> int:
        return self.pos

    def advance(self, position: int) -> None:
        self.pos = position
        self.advances.append(position)

    def read(self, after: int, limit: int | None = None) -> list[tuple[Any, ...]]:
        return [r for r in self.rows if r[0] > after][: limit or 500]

    def follow(
        self, stop: threading.Event, catch_up: Callable[[], int], *, poll_seconds: float = 1.0
    ) -> None:
        del poll_seconds
        catch_up()

    def close(self) -> None:
        pass


def fake_enrich(rows: Sequence[tuple[Any, ...]]) -> list[SinkRecord]:
    out = []
    for position, originator, _, event_type, state, tenant, at in rows:
        audit = {
            "event_type": event_type,
            "result": state.decode(),
            "timestamp": at,
            "details": {"n": position},
        }
        facts = EventFacts(
            event_id=str(originator),
            position=position,
            tenant_id=str(tenant),
            tenant_slug="acme",
            actor_roles=("EXECUTIVE",),
            constitutional_hash="cdd01ef066bc6cf2",
            event_type=event_type,
        )
        out.append(enrich(audit, facts))
    return out


@dataclass
class FakeSink:
    """Records every batch; `script` answers attempts in order (an exception to raise, a set of
    positions to refuse one by one), then everything is accepted."""

    script: list[Any] = field(default_factory=list)
    batches: list[list[SinkRecord]] = field(default_factory=list)

    def deliver(self, records: Sequence[SinkRecord]) -> Delivery:
        self.batches.append(list(records))
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, BaseException):
                raise step
            refused = {r.event_id: "bad item" for r in records if r.position in step}
            return Delivery(failed=refused)
        return DELIVERED

    def close(self) -> None:
        pass

    @property
    def received(self) -> list[int]:
        return [r.position for b in self.batches for r in b]


@dataclass
class FakeDeadLetters:
    added: list[tuple[UUID, UUID, list[tuple[SinkRecord, str]], int]] = field(default_factory=list)

    def add(
        self,
        owner: UUID,
        integration_id: UUID,
        failures: Sequence[tuple[SinkRecord, str]],
        attempts: int,
    ) -> None:
        self.added.append((owner, integration_id, list(failures), attempts))

    def close(self) -> None:
        pass


def runner(
    log: FakeLog,
    sink: FakeSink,
    dead: FakeDeadLetters | None = None,
    *,
    owner: UUID = TENANT,
    **settings: Any,
) -> SinkRunner:
    defaults: dict[str, Any] = {"max_wait": 0.0, "retry_initial": 0.001, "max_attempts": 3}
    return SinkRunner(
        integration_id=uuid4(),
        owner=owner,
        scope=None if owner == SYSTEM_TENANT_ID else owner,
        source=log,
        sink=sink,
        enrich=fake_enrich,
        dead_letters=dead or FakeDeadLetters(),
        settings=SinkSettings(**{**defaults, **settings}),
    )


def test_batches_are_cut_by_count_and_by_bytes() -> None:
    log = FakeLog()
    for _ in range(7):
        log.add(TENANT)
    sink = FakeSink()
    assert runner(log, sink, max_count=3).catch_up() == 7
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    one = sink.batches[0][0].size
    sink2 = FakeSink()
    log.pos = 0
    runner(log, sink2, max_count=100, max_bytes=2 * one + 10).catch_up()
    assert [len(b) for b in sink2.batches] == [2, 2, 2, 1]
    assert log.pos == 7


def test_a_record_larger_than_the_byte_limit_goes_alone() -> None:
    records = fake_enrich(
        [(i, uuid4(), 1, "t", b"success", TENANT, datetime.now(UTC)) for i in (1, 2)]
    )
    assert [len(b) for b in batches(records, max_count=10, max_bytes=5)] == [1, 1]


def test_only_the_refused_items_are_retried() -> None:
    log = FakeLog()
    for _ in range(5):
        log.add(TENANT)
    sink = FakeSink(script=[{2, 4}, {4}])
    r = runner(log, sink, max_attempts=5)
    r.catch_up()
    assert [[x.position for x in b] for b in sink.batches] == [[1, 2, 3, 4, 5], [2, 4], [4]]
    assert r.stats.delivered == 5
    assert r.stats.failed == 3
    assert log.pos == 5


def test_a_refused_batch_is_retried_then_dead_lettered_and_the_stream_moves_on() -> None:
    log = FakeLog()
    for _ in range(3):
        log.add(TENANT)
    dead = FakeDeadLetters()
    sink = FakeSink(script=[DeliveryFailed("503"), DeliveryFailed("503"), DeliveryFailed("503")])
    r = runner(log, sink, dead, max_attempts=3)
    r.catch_up()
    assert len(sink.batches) == 3
    assert len(dead.added) == 1
    owner, _, failures, attempts = dead.added[0]
    assert owner == TENANT
    assert attempts == 3
    assert [(rec.position, why) for rec, why in failures] == [(1, "503"), (2, "503"), (3, "503")]
    assert r.stats.dead_lettered == 3
    assert log.pos == 3
    log.add(TENANT)  # the next event goes through: nothing waits behind a dead letter
    r.catch_up()
    assert sink.received[-1] == 4


def test_a_tenant_sink_sees_only_its_tenant_and_a_platform_sink_sees_all() -> None:
    log = FakeLog()
    for tenant in (TENANT, OTHER, TENANT, SYSTEM_TENANT_ID, OTHER):
        log.add(tenant)
    own = FakeSink()
    runner(log, own).catch_up()
    assert own.received == [1, 3]
    assert {r.tenant_id for b in own.batches for r in b} == {str(TENANT)}
    assert log.pos == 5
    log.pos = 0
    platform = FakeSink()
    runner(log, platform, owner=SYSTEM_TENANT_ID).catch_up()
    assert platform.received == [1, 2, 3, 4, 5]


def test_records_are_enriched() -> None:
    log = FakeLog()
    log.add(TENANT, result="denied", event_type="decision.made")
    sink = FakeSink()
    runner(log, sink).catch_up()
    body = sink.batches[0][0].body
    assert body["tenant_id"] == str(TENANT)
    assert body["tenant_slug"] == "acme"
    assert body["actor_roles"] == ["EXECUTIVE"]
    assert body["constitutional_hash"] == "cdd01ef066bc6cf2"
    assert body["event_id"] == str(log.rows[0][1])
    assert body["alert"] == "policy_decision_denied"
    assert body["severity"] == "high"


class WatchedStop(threading.Event):
    """A stop event that records how long it was asked to wait (and never waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return self.is_set()


def test_a_partial_batch_waits_for_more_but_an_alert_does_not() -> None:
    log = FakeLog()
    log.add(TENANT)

    class Growing(FakeLog):
        def read(self, after: int, limit: int | None = None) -> list[tuple[Any, ...]]:
            if after >= 1 and len(self.rows) == 1:
                self.add(TENANT)  # arrives while the first waits
            return super().read(after, limit)

    grow = Growing(rows=list(log.rows))
    sink = FakeSink()
    lingered = WatchedStop()
    runner(grow, sink, max_wait=0.25).catch_up(lingered)
    assert lingered.waits == [0.25]
    assert [len(b) for b in sink.batches] == [2]

    alert_log = FakeLog()
    alert_log.add(TENANT, result="denied", event_type="decision.made")
    alert_sink = FakeSink()
    watch = WatchedStop()
    runner(alert_log, alert_sink, max_wait=5.0).catch_up(watch)
    assert watch.waits == []  # it never lingered
    assert [len(b) for b in alert_sink.batches] == [1]


def test_a_runner_killed_mid_batch_resumes_from_its_last_confirmed_position() -> None:
    log = FakeLog()
    for _ in range(6):
        log.add(TENANT)
    crash = FakeSink(script=[set(), RuntimeError("killed")])
    with pytest.raises(RuntimeError):
        runner(log, crash, max_count=3).catch_up()
    # The first round (all six read, batches of three) was not confirmed: the position stayed.
    assert log.pos == 0
    again = FakeSink()
    runner(log, again, max_count=3).catch_up()
    assert again.received == [1, 2, 3, 4, 5, 6]  # 1-3 twice in all: duplicates, no loss
    assert sorted(set(crash.received + again.received)) == [1, 2, 3, 4, 5, 6]
    assert log.pos == 6


def test_stop_during_a_retry_leaves_the_position() -> None:
    log = FakeLog()
    log.add(TENANT)
    stop = threading.Event()
    stop.set()
    sink = FakeSink(script=[DeliveryFailed("down")])
    with pytest.raises(SinkStopped):
        runner(log, sink, max_attempts=5).catch_up(stop)
    assert log.pos == 0


def test_retry_delays_grow_with_jitter_and_honour_retry_after() -> None:
    rng = random.Random(7)
    delays = [retry_delay(a, 0.5, rng=rng) for a in range(1, 9)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] > delays[0] * 8
    assert retry_delay(1, 0.5, retry_after=12.0, rng=rng) == 12.0
    assert len({retry_delay(3, 1.0) for _ in range(20)}) > 1  # jittered


def _sign_in(n: int, user: str, at: float, result: str = "failure") -> SinkRecord:
    audit = {
        "event_type": "authentication.ldap_login",
        "event_category": "authentication",
        "result": result,
        "timestamp": datetime.fromtimestamp(at, UTC),
        "details": {"username": user},
    }
    facts = EventFacts(str(uuid4()), n, str(TENANT), "acme", (), "cdd01ef066bc6cf2", "x")
    return enrich(audit, facts)


def test_repeated_failed_sign_ins_of_one_user_raise_an_alert() -> None:
    tracker = FailedSignIns(threshold=3, window_seconds=60)
    t = 1_780_000_000.0
    seen = [tracker.observe(_sign_in(n, "bob", t + n)) for n in range(1, 5)]
    assert [r.alert for r in seen] == [
        None,
        None,
        "repeated_failed_sign_ins",
        "repeated_failed_sign_ins",
    ]
    assert seen[2].severity is Severity.HIGH
    assert seen[2].body["details"]["failures_in_window"] == 3
    # Another user, a success, and failures spread wider than the window raise nothing.
    assert tracker.observe(_sign_in(5, "alice", t + 5)).alert is None
    assert tracker.observe(_sign_in(6, "carol", t, "success")).alert is None
    spread = [tracker.observe(_sign_in(n, "dave", t + n * 40)) for n in range(7, 10)]
    assert [r.alert for r in spread] == [None, None, None]


@pytest.mark.parametrize(
    ("audit", "alert", "severity"),
    [
        (
            {"event_type": "governance.policy_decision", "result": "denied"},
            "policy_decision_denied",
            Severity.HIGH,
        ),
        (
            {"event_type": "migration.shadow_window", "details": {"severity": "critical"}},
            "shadow_disagreement_critical",
            Severity.CRITICAL,
        ),
        (
            {"event_type": "policy.gap_found", "details": {"severity": "critical"}},
            "policy_gap_critical",
            Severity.CRITICAL,
        ),
        (
            {
                "event_type": "governance.x",
                "result": "denied",
                "constitutional_validation_passed": False,
            },
            "constitutional_hash_refused",
            Severity.CRITICAL,
        ),
        ({"event_type": "authorization.create_tenant", "result": "denied"}, None, Severity.MEDIUM),
        ({"event_type": "tenant.created", "result": "success"}, None, Severity.INFO),
    ],
)
def test_alerts_and_severities(
    audit: dict[str, Any], alert: str | None, severity: Severity
) -> None:
    assert classify(audit) == (severity, alert)
