"""The SIEM adapters behind the sink port (`domain.sinks.Sink`), one module per receiver, and
`open_sink`, which picks one by the integration's `config.kind`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.sinks import Sink
from infra.sinks.cef_syslog import CefSyslog
from infra.sinks.datadog import DatadogLogs
from infra.sinks.elasticsearch import ElasticsearchBulk
from infra.sinks.ndjson_file import NdjsonFile
from infra.sinks.sentinel import SentinelLogs
from infra.sinks.splunk_hec import SplunkHec

ADAPTERS: dict[str, Callable[[dict[str, Any]], Sink]] = {
    "splunk_hec": SplunkHec,
    "cef_syslog": CefSyslog,
    "ndjson_file": NdjsonFile,
    "elasticsearch": ElasticsearchBulk,
    "datadog": DatadogLogs,
    "sentinel": SentinelLogs,
}


def open_sink(config: dict[str, Any]) -> Sink:
    """The adapter of a sink's clear configuration (its secrets opened)."""
    return ADAPTERS[str(config["kind"])](config)
