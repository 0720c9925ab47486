"""Background workers run under the supervisor that the composition root starts: a worker that
fails is restarted, and while it waits for its restart readiness says so and the metrics show
it down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from litestar.testing import TestClient

from api.bootstrap import AUDIT_PARTITIONS, System, UnknownWorker, build
from api.http.app import create_app
from api.settings import Settings
from infra.supervisor import Supervisor, Worker, WorkerState

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A system of the test's own on the session database (its workers disturb no other)."""
    built = build(replace(settings, data_dir=tmp_path_factory.mktemp("own")))
    yield built
    built.close()


def test_start_workers_runs_partition_maintenance_under_the_supervisor(own_system: System) -> None:
    assert own_system.start_workers([AUDIT_PARTITIONS]) == [AUDIT_PARTITIONS]
    (status,) = own_system.worker_status()
    assert status.name == AUDIT_PARTITIONS
    assert status.state is WorkerState.RUNNING
    own_system.close()
    assert own_system.worker_status()[0].state is WorkerState.STOPPED


def test_an_unknown_worker_name_is_refused_before_anything_starts(own_system: System) -> None:
    with pytest.raises(UnknownWorker, match="kafka_relay"):
        own_system.start_workers(["kafka_relay"])  # streaming is off here
    assert own_system.supervisor is None
    with pytest.raises(KeyError, match=r"unknown projection .nope.; known: .*tenants"):
        own_system.runner("nope")


def test_the_workers_start_once(own_system: System) -> None:
    own_system.start_workers([AUDIT_PARTITIONS])
    first = own_system.supervisor
    with pytest.raises(RuntimeError, match="the workers have been started already"):
        own_system.start_workers([AUDIT_PARTITIONS])
    assert own_system.supervisor is first


def test_a_failing_worker_makes_the_service_not_ready_and_shows_in_metrics(
    own_system: System,
) -> None:
    failed = threading.Event()

    def broken(stop: threading.Event) -> None:
        failed.set()
        raise ConnectionError("broker away")

    own_system.supervisor = Supervisor([Worker("sink", broken)], backoff_seconds=600)
    own_system.supervisor.start()
    assert failed.wait(10)
    with TestClient(create_app(own_system)) as client:
        for _ in range(500):  # the supervisor records the failure right after it is raised
            ready = client.get("/readyz")
            if ready.status_code == 503:
                break
            threading.Event().wait(0.01)
        assert ready.status_code == 503, ready.text
        (restarting,) = ready.json()["checks"]["workers"]["restarting"]
        assert restarting == {
            "name": "sink",
            "restarts": 1,
            "last_error": "ConnectionError: broker away",
        }
        metrics = client.get("/metrics").text
    assert 'acgs_worker_up{worker="sink"} 0.0' in metrics
    assert 'acgs_worker_restarts_total{worker="sink"} 1.0' in metrics
