"""Prometheus figures of the decision API and its decision log (one API process):

- `acgs_decisions_made_total`: decisions handed to the decision log;
- `acgs_decisions_logged_total`: decisions written to it;
- `acgs_decisions_dropped_total`: decisions the log refused (its queue was full): a loss, shown;
- `acgs_decision_log_queue`: decisions waiting to be written;
- `acgs_decision_audit_failures_total`: denied decisions whose audit entry could not be saved;
- `acgs_decision_evaluation_errors_total`: requests refused with DECISION_EVALUATION_FAILED;
- `acgs_policy_cache_loads_total`: active versions loaded from the event store (cache misses);
- `acgs_policy_cache_invalidations_total`: policy and setting changes (from any process) that
  dropped cached entries here;
- `acgs_policy_cache_live`: 1 while the cache follows the log (before that nothing is cached).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class DecisionCollector(Collector):
    def __init__(self, system: Any) -> None:
        self._system = system

    def collect(self) -> Iterator[Metric]:
        recorder, service = self._system.decision_log, self._system.decisions
        follower = self._system.policy_cache
        if recorder is None or service is None:
            return
        counters = (
            ("acgs_decisions_made", "Decisions handed to the decision log", recorder.made),
            ("acgs_decisions_logged", "Decisions written to the decision log", recorder.logged),
            (
                "acgs_decisions_dropped",
                "Decisions the decision log dropped (its queue was full)",
                recorder.dropped,
            ),
            (
                "acgs_decision_audit_failures",
                "Denied decisions whose governance audit entry could not be saved",
                recorder.audit_failures,
            ),
            (
                "acgs_decision_evaluation_errors",
                "Decision requests refused because the policy could not be evaluated",
                service.evaluation_errors,
            ),
            (
                "acgs_policy_cache_loads",
                "Active policy versions loaded from the event store (cache misses)",
                service.cache.loads,
            ),
            (
                "acgs_policy_cache_invalidations",
                "Changes of policies or decision-log settings that dropped cached entries",
                follower.invalidations if follower is not None else 0,
            ),
        )
        for name, text, value in counters:
            yield CounterMetricFamily(name, text, value=value)
        yield GaugeMetricFamily(
            "acgs_decision_log_queue", "Decisions waiting to be written", value=recorder.queued
        )
        yield GaugeMetricFamily(
            "acgs_policy_cache_live",
            "1 while the policy cache follows the event log (and so keeps entries), else 0",
            value=1 if service.cache.live else 0,
        )
