"""Prometheus figures of the decision API and its decision log (one API process):

- `acgs_decisions_made_total`: decisions handed to the decision log;
- `acgs_decisions_logged_total`: decisions written to it;
- `acgs_decisions_dropped_total`: decisions the log refused (its queue was full): a loss, shown;
- `acgs_decision_log_queue`: decisions waiting to be written;
- `acgs_decision_audit_failures_total`: denied decisions whose audit entry could not be saved;
- `acgs_decision_evaluation_errors_total`: requests refused with DECISION_EVALUATION_FAILED.
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
        )
        for name, text, value in counters:
            yield CounterMetricFamily(name, text, value=value)
        yield GaugeMetricFamily(
            "acgs_decision_log_queue", "Decisions waiting to be written", value=recorder.queued
        )
