"""The sinks worker keeps one supervised worker per enabled SIEM integration: started when one
appears, stopped when it goes, restarted when its configuration changes; one that cannot be
built does not keep the others from starting."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID, uuid4

from api.sink_fleet import SinkFleet
from domain.sinks import follower_name
from infra.postgres.sink_store import ConfiguredSink
from infra.supervisor import Supervisor, Worker

TENANT = uuid4()


class Configured:
    def __init__(self) -> None:
        self.sinks: list[ConfiguredSink] = []

    def configured(self) -> list[ConfiguredSink]:
        return list(self.sinks)

    def close(self) -> None:
        pass


def _idle(stop: threading.Event) -> None:
    stop.wait()


def _worker_of(built: list[UUID], broken: set[UUID]) -> Any:
    def make(tenant_id: UUID, integration_id: UUID) -> Worker:
        del tenant_id
        if integration_id in broken:
            msg = "cannot open the sink"
            raise KeyError(msg)
        built.append(integration_id)
        return Worker(follower_name(integration_id), _idle)

    return make


def test_sinks_are_started_stopped_and_restarted_with_their_configuration() -> None:
    store = Configured()
    supervisor = Supervisor([])
    supervisor.start()
    built: list[UUID] = []
    broken: set[UUID] = set()
    fleet = SinkFleet(store, lambda: supervisor, _worker_of(built, broken))  # type: ignore[arg-type]
    one, two, bad = uuid4(), uuid4(), uuid4()
    broken.add(bad)
    try:
        store.sinks = [
            ConfiguredSink(bad, TENANT, 1),
            ConfiguredSink(one, TENANT, 1),
            ConfiguredSink(two, TENANT, 1),
        ]
        fleet.reconcile()
        assert sorted(s.name for s in supervisor.status()) == sorted(
            [follower_name(one), follower_name(two)]
        )
        store.sinks = [ConfiguredSink(one, TENANT, 2)]  # two disabled, one changed
        fleet.reconcile()
        assert [s.name for s in supervisor.status()] == [follower_name(one)]
        assert built == [one, two, one]
        fleet.stop_all()
        assert supervisor.status() == []
    finally:
        supervisor.stop()


def test_the_fleet_stops_its_sinks_when_it_stops() -> None:
    store = Configured()
    supervisor = Supervisor([])
    supervisor.start()
    sink = uuid4()
    store.sinks = [ConfiguredSink(sink, TENANT, 1)]
    fleet = SinkFleet(store, lambda: supervisor, _worker_of([], set()), refresh_seconds=0.01)  # type: ignore[arg-type]
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(stop,))
    runner.start()
    try:
        deadline = threading.Event()
        for _ in range(500):
            if supervisor.status():
                break
            deadline.wait(0.01)
        assert [s.name for s in supervisor.status()] == [follower_name(sink)]
    finally:
        stop.set()
        runner.join(10)
        supervisor.stop()
    assert fleet.running == {}
