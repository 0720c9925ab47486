"""Tracing without peers: the critical-path sampler's decisions, a hash failure recorded as a
critical span, and log lines carrying the trace and span ids."""

from __future__ import annotations

import importlib.util
import json
import logging
import random
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from api.logging import JsonFormatter
from infra import tracing

SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UNSAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def decide(sampler: tracing.CriticalPathSampler, parent: str | None, *, critical: bool) -> Decision:
    ctx = tracing.parent_context(parent)
    trace_id = 0xFFFFFFFFFFFFFFFF_FFFFFFFFFFFFFFFF  # the least likely id to be sampled by ratio
    return sampler.should_sample(
        ctx, trace_id, "x", attributes={tracing.CRITICAL: critical}
    ).decision


def test_critical_paths_are_always_sampled_and_others_by_ratio() -> None:
    sampler = tracing.CriticalPathSampler(sample_ratio=0.01, critical_ratio=1.0)
    assert decide(sampler, None, critical=True) is Decision.RECORD_AND_SAMPLE
    assert decide(sampler, None, critical=False) is Decision.DROP
    sampler.set_ratios(1.0, 1.0)
    assert decide(sampler, None, critical=False) is Decision.RECORD_AND_SAMPLE
    sampler.set_ratios(0.01, 0.0)  # critical paths may be sampled less, too
    assert decide(sampler, None, critical=True) is Decision.DROP


def test_the_parent_decides_except_an_unsampled_caller_on_a_critical_path() -> None:
    sampler = tracing.CriticalPathSampler(sample_ratio=0.0, critical_ratio=1.0)
    assert decide(sampler, SAMPLED, critical=False) is Decision.RECORD_AND_SAMPLE
    assert decide(sampler, UNSAMPLED, critical=False) is Decision.DROP
    assert decide(sampler, UNSAMPLED, critical=True) is Decision.RECORD_AND_SAMPLE


def test_sampled_reads_the_flags() -> None:
    assert tracing.sampled(SAMPLED)
    assert not tracing.sampled(UNSAMPLED)
    assert not tracing.sampled(None)
    assert tracing.parent_context("garbage") is None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.add_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def test_a_hash_failure_is_recorded_whatever_the_request_sampling(
    spans: InMemorySpanExporter,
) -> None:
    tracing.sampler().set_ratios(0.0, 1.0)
    try:
        with tracing.continued("request", UNSAMPLED) as request:
            assert not request.is_recording()
            tracing.record_critical("constitutional_hash.failure", {"acgs.error.code": "X"})
    finally:
        tracing.sampler().set_ratios(0.01, 1.0)
    [span] = spans.get_finished_spans()
    assert span.name == "constitutional_hash.failure"
    assert span.links[0].context.trace_id == int("4bf92f3577b34da6a3ce929d0e0e4736", 16)


def test_log_lines_carry_the_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "name": "t"})
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with tracing.continued("work", SAMPLED) as span:
        line = json.loads(JsonFormatter().format(record))
        assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        assert line["span_id"] == format(span.get_span_context().span_id, "016x")
    assert trace.get_current_span().get_span_context().is_valid is False


def test_the_sampler_describes_its_ratios() -> None:
    sampler = tracing.CriticalPathSampler(sample_ratio=0.25, critical_ratio=1.0)
    assert sampler.get_description() == "CriticalPathSampler{0.25,1.0}"


EXPORTER_MODULES = {
    "otlp-grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "otlp-http": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "zipkin": "opentelemetry.exporter.zipkin.json",
}


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


@pytest.mark.parametrize("name", EXPORTER_MODULES)
def test_an_exporter_of_the_telemetry_extra_is_made_or_named_as_missing(name: str) -> None:
    if not importable(EXPORTER_MODULES[name]):
        with pytest.raises(RuntimeError, match=f"the {name} trace exporter needs the telemetry"):
            tracing._exporter(name, "http://127.0.0.1:4317")
    else:
        made = tracing._exporter(name, "http://127.0.0.1:4317")
        assert type(made).__module__.startswith("opentelemetry.exporter")


def test_the_exporters_without_extras_and_an_unknown_one() -> None:
    assert tracing._exporter("none", None) is None
    assert isinstance(tracing._exporter("console", None), ConsoleSpanExporter)
    with pytest.raises(ValueError, match="unknown trace exporter 'jaeger'"):
        tracing._exporter("jaeger", None)


def test_a_span_without_a_caller_starts_a_trace_of_its_own(spans: InMemorySpanExporter) -> None:
    tracing.sampler().set_ratios(1.0, 1.0)
    try:
        with tracing.continued("kafka.consume", None) as span:
            assert tracing.current_traceparent() is not None
    finally:
        tracing.sampler().set_ratios(0.01, 1.0)
    (finished,) = [s for s in spans.get_finished_spans() if s.name == "kafka.consume"]
    assert finished.parent is None
    assert finished.context.trace_id == span.get_span_context().trace_id
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_a_root_span_is_sampled_as_the_ratio_sampler_samples_it() -> None:
    sampler = tracing.CriticalPathSampler(sample_ratio=0.25, critical_ratio=0.5)
    ordinary, critical = TraceIdRatioBased(0.25), TraceIdRatioBased(0.5)
    rng = random.Random(11)
    for _ in range(4000):
        trace_id = rng.getrandbits(128)
        for attributes, reference in (({}, ordinary), ({tracing.CRITICAL: True}, critical)):
            ours = sampler.should_sample(None, trace_id, "GET /x", attributes=attributes)
            theirs = reference.should_sample(None, trace_id, "GET /x", attributes=attributes)
            assert ours.decision == theirs.decision
            assert dict(ours.attributes) == dict(theirs.attributes)
            assert ours.trace_state == theirs.trace_state
