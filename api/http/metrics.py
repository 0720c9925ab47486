"""Prometheus metrics of one API process, in a registry of its own (decisions: operations).

- `acgs_http_requests_total{route,method,status,tenant}`: the route is the path template, never
  the raw path, so ids do not explode the label set;
- `acgs_http_request_duration_seconds{route,method}`: latency histogram;
- `acgs_events_appended_total`: events in the event store (the head of its notification log);
- `acgs_projection_lag_events{projection}` / `acgs_projection_lag_seconds{projection}`: only
  for the followers of the log this deployment runs;
- `acgs_projection_enabled{projection}`: 1 for those, 0 for a follower with a position that this
  deployment does not run (e.g. the relay while streaming is off), whose lag is not reported;
- `acgs_worker_up{worker}` (1 running, 0 restarting after a failure) and
  `acgs_worker_restarts_total{worker}`: the supervised background workers;
- `acgs_integration_circuit_state{integration_id}` (0 closed, 1 half-open, 2 open) and
  `acgs_integration_circuit_opened_total{integration_id}`: the integrations' circuit breakers
  in this process;
- audit completeness: `acgs_audit_events_in_total` (events recorded: the head of the log),
  `acgs_audit_rows_out_total` (events the audit projection has turned into audit rows: its
  position; each event becomes exactly one row) and `acgs_audit_rows_missing` (the difference:
  events with no audit row yet);
- SIEM sinks run by this process, by follower name (`sink_<integration id>`):
  `acgs_sink_delivered_total`, `acgs_sink_failed_total` (records refused by an attempt),
  `acgs_sink_dead_lettered_total`, `acgs_sink_retries_total`, `acgs_sink_position` and
  `acgs_sink_delivery_latency_seconds` (event time to acknowledgement of the latest batch); their
  lag is `acgs_projection_lag_*` under the same name.
The event-store figures are read from the database when scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from projections.sinks.runner import SINK_STATS

log = logging.getLogger("acgs.metrics")

# The exposition format generate_latest() writes, named by prometheus-client itself.
CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class WorkerCollector(Collector):
    def __init__(self, worker_status: Callable[[], list[Any]]) -> None:
        self._status = worker_status

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "acgs_worker_up",
            "1 while a background worker runs (or stands by while another process owns it), "
            "0 while it is being restarted",
            labels=["worker"],
        )
        standby = GaugeMetricFamily(
            "acgs_worker_standby",
            "1 while a single-owner worker stands by because another process runs it",
            labels=["worker"],
        )
        restarts = CounterMetricFamily(
            "acgs_worker_restarts",
            "Restarts of a background worker after a failure",
            labels=["worker"],
        )
        for worker in self._status():
            up.add_metric([worker.name], 1 if worker.state in {"running", "standby"} else 0)
            standby.add_metric([worker.name], 1 if worker.state == "standby" else 0)
            restarts.add_metric([worker.name], worker.restarts)
        yield up
        yield standby
        yield restarts


_CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}


class BreakerCollector(Collector):
    def __init__(self, snapshot: Callable[[], dict[Any, dict[str, Any]]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "acgs_integration_circuit_state",
            "Circuit breaker of an integration: 0 closed, 1 half-open, 2 open",
            labels=["integration_id"],
        )
        opened = CounterMetricFamily(
            "acgs_integration_circuit_opened",
            "Times an integration's circuit breaker opened",
            labels=["integration_id"],
        )
        for key, breaker in self._snapshot().items():
            state.add_metric([str(key)], _CIRCUIT_STATES[breaker["state"]])
            opened.add_metric([str(key)], breaker["opened_total"])
        yield state
        yield opened


class SinkCollector(Collector):
    _COUNTERS = (
        ("delivered", "Records a SIEM sink's receiver acknowledged"),
        ("failed", "Records refused by a delivery attempt (each attempt counts)"),
        ("dead_lettered", "Records dead-lettered after the sink's attempts ran out"),
        ("retries", "Delivery attempts repeated after a refusal"),
    )

    def __init__(self, stats: Callable[[], dict[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for field, doc in self._COUNTERS:
            family = CounterMetricFamily(f"acgs_sink_{field}", doc, labels=["sink"])
            for name, s in stats.items():
                family.add_metric([name], getattr(s, field))
            yield family
        position = GaugeMetricFamily(
            "acgs_sink_position", "The last log position a sink confirmed", labels=["sink"]
        )
        latency = GaugeMetricFamily(
            "acgs_sink_delivery_latency_seconds",
            "From the newest event of a sink's latest batch to the receiver's acknowledgement",
            labels=["sink"],
        )
        for name, s in stats.items():
            position.add_metric([name], s.position)
            latency.add_metric([name], s.last_delivery_latency)
        yield position
        yield latency


class EventStoreCollector(Collector):
    def __init__(self, projection_status: Callable[[], list[dict[str, Any]]]) -> None:
        self._status = projection_status

    def collect(self) -> Iterator[Metric]:
        try:
            rows = self._status()
        except Exception:  # noqa: BLE001 - a scrape reports the failure, it does not fail
            log.warning("projection status unavailable for metrics")
            failed = GaugeMetricFamily(
                "acgs_event_store_scrape_error", "1 when the event store could not be read"
            )
            failed.add_metric([], 1)
            yield failed
            return
        head = max((int(r["head"]) for r in rows), default=0)
        yield CounterMetricFamily(
            "acgs_events_appended", "Events appended to the event store", value=head
        )
        events = GaugeMetricFamily(
            "acgs_projection_lag_events", "Events a projection is behind", labels=["projection"]
        )
        seconds = GaugeMetricFamily(
            "acgs_projection_lag_seconds",
            "Age of the oldest event a projection has not applied",
            labels=["projection"],
        )
        enabled = GaugeMetricFamily(
            "acgs_projection_enabled",
            "1 when this deployment runs the follower of the log, 0 when it does not",
            labels=["projection"],
        )
        yield from _audit_completeness(rows, head)
        for row in rows:
            enabled.add_metric([row["name"]], 1 if row["enabled"] else 0)
            if row["enabled"]:
                events.add_metric([row["name"]], row["events_behind"])
                seconds.add_metric([row["name"]], row["seconds_behind"])
        yield events
        yield seconds
        yield enabled


AUDIT_PROJECTION = "audit_log"


def _audit_completeness(rows: list[dict[str, Any]], head: int) -> Iterator[Metric]:
    audit = next((r for r in rows if r["name"] == AUDIT_PROJECTION), None)
    out = int(audit["position"]) if audit else 0
    yield CounterMetricFamily(
        "acgs_audit_events_in", "Events recorded in the event store", value=head
    )
    yield CounterMetricFamily(
        "acgs_audit_rows_out", "Events the audit projection has written as audit rows", value=out
    )
    yield GaugeMetricFamily(
        "acgs_audit_rows_missing",
        "Events recorded that have no audit row yet (events in minus rows out)",
        value=max(0, head - out),
    )


class ApiMetrics:
    def __init__(
        self,
        projection_status: Callable[[], list[dict[str, Any]]],
        worker_status: Callable[[], list[Any]] = list,
        breakers: Callable[[], dict[Any, dict[str, Any]]] = dict,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "acgs_http_requests",
            "HTTP requests by route, method, status and tenant",
            ["route", "method", "status", "tenant"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "acgs_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(EventStoreCollector(projection_status))
        self.registry.register(WorkerCollector(worker_status))
        self.registry.register(BreakerCollector(breakers))
        self.registry.register(SinkCollector(lambda: dict(SINK_STATS)))
        self._series: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, tenant: str, seconds: float) -> None:
        key = (route, method, status, tenant)
        series = self._series.get(key)
        if series is None:  # labels() is a locked lookup: resolve each label set once
            series = self._series[key] = (
                self._requests.labels(route, method, str(status), tenant),
                self._latency.labels(route, method),
            )
        series[0].inc()
        series[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
