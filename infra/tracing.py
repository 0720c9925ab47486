"""OpenTelemetry tracing: the one setup of the process's tracer provider, its sampler, its
exporter, and the few helpers the layers use to continue a trace across the event store, the
projections, the Kafka relay and consumers (W3C `traceparent` in HTTP headers, event metadata
and Kafka headers).

Sampling is parent-based: a span follows its parent's decision. A trace that starts here (no
parent, or a caller's parent that is not sampled) is kept when it is on a critical path
(authentication, tenant lifecycle, constitutional-hash failures, policy conversion: the span
carries `acgs.critical`) with `critical_ratio` (1.0: always), otherwise with `sample_ratio`
(0.01: 1 %). Exporters: `none` (the default: spans are sampled, their ids are in the logs and
events, nothing is sent), `console`, `otlp-grpc`, `otlp-http` (Jaeger and Tempo accept OTLP)
and `zipkin`; the last three need the `telemetry` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)
CRITICAL = "acgs.critical"  # a span attribute: this trace is on a critical path
TENANT = "acgs.tenant_id"
HASH = "acgs.constitutional_hash"
ROLE = "acgs.maci_role"
USER = "enduser.id"
SERVICE_NAME = "acgs-enterprise"
_PROPAGATOR = TraceContextTextMapPropagator()
_DROP = SamplingResult(Decision.DROP)
_TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT


class CriticalPathSampler(Sampler):
    """Parent-based sampling with critical paths (see the module docstring). The ratios may be
    changed while the process runs (`configure` again, or a benchmark comparing settings)."""

    def __init__(self, sample_ratio: float = 0.01, critical_ratio: float = 1.0) -> None:
        self.set_ratios(sample_ratio, critical_ratio)

    def set_ratios(self, sample_ratio: float, critical_ratio: float) -> None:
        self.sample_ratio = sample_ratio
        self.critical_ratio = critical_ratio
        self._ordinary = TraceIdRatioBased(sample_ratio)
        self._critical = TraceIdRatioBased(critical_ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        critical = bool(attributes and attributes.get(CRITICAL))
        if parent.is_valid:
            if parent.trace_flags.sampled:
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)
            if not parent.is_remote or not critical:
                return SamplingResult(Decision.DROP, None, parent.trace_state)
        chooser = self._critical if critical else self._ordinary
        if not parent.is_valid and trace_id & _TRACE_ID_LIMIT >= chooser.bound:
            return _DROP  # the ratio sampler's answer to a root it drops, without its lookups
        return chooser.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"CriticalPathSampler{{{self.sample_ratio},{self.critical_ratio}}}"


_provider: TracerProvider | None = None
_sampler = CriticalPathSampler()
_NOOP = trace.NoOpTracer()
_tracer: trace.Tracer = _NOOP  # tracing is off until configured with a ratio above 0


def configure(
    *,
    exporter: str = "none",
    endpoint: str | None = None,
    sample_ratio: float = 0.01,
    critical_ratio: float = 1.0,
) -> TracerProvider:
    """Install the process's tracer provider (once; a later call changes the ratios and adds
    the exporter) and return it."""
    global _provider, _tracer  # noqa: PLW0603 - one provider per process, as OpenTelemetry requires
    _sampler.set_ratios(sample_ratio, critical_ratio)
    if _provider is None:
        _provider = TracerProvider(
            sampler=_sampler, resource=Resource.create({"service.name": SERVICE_NAME})
        )
        trace.set_tracer_provider(_provider)
    # Both ratios 0: tracing is off (no span is even created; a caller's trace still reaches the
    # events, whose metadata keeps the request's own traceparent header).
    _tracer = _provider.get_tracer("acgs") if sample_ratio or critical_ratio else _NOOP
    made = _exporter(exporter, endpoint)
    if made is not None:
        add_processor(BatchSpanProcessor(made))
    return _provider


def add_processor(processor: SpanProcessor) -> None:
    """Send spans to `processor` too (tests add an in-memory exporter this way)."""
    if _provider is None:
        configure()
    assert _provider is not None
    _provider.add_span_processor(processor)


def sampler() -> CriticalPathSampler:
    return _sampler


def _exporter(name: str, endpoint: str | None) -> SpanExporter | None:
    options = {"endpoint": endpoint} if endpoint else {}
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    try:
        if name == "otlp-grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter,
            )

            return OTLPSpanExporter(**options)  # type: ignore[no-any-return]
        if name == "otlp-http":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                OTLPSpanExporter as HttpExporter,
            )

            return HttpExporter(**options)  # type: ignore[no-any-return]
        if name == "zipkin":
            from opentelemetry.exporter.zipkin.json import ZipkinExporter  # noqa: PLC0415

            return ZipkinExporter(**options)  # type: ignore[no-any-return]
    except ImportError as exc:
        msg = f"the {name} trace exporter needs the telemetry extra ({exc.name} is missing)"
        raise RuntimeError(msg) from exc
    msg = f"unknown trace exporter {name!r}"
    raise ValueError(msg)


def tracer() -> trace.Tracer:
    """The service's tracer (a no-op one while tracing is off)."""
    return _tracer


def parent_context(traceparent: str | None) -> Context | None:
    """The context a W3C `traceparent` names (None when absent or malformed)."""
    if not traceparent:
        return None
    ctx = _PROPAGATOR.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span (None when there is none)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def sampled(traceparent: str | None) -> bool:
    """Whether a `traceparent` carries the sampled flag (cheap: no parsing beyond the flags)."""
    return bool(traceparent) and str(traceparent).endswith("-01")


@contextmanager
def continued(
    name: str,
    traceparent: str | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A span continuing the trace of `traceparent` (an event's, a Kafka message's), current
    while the block runs."""
    ctx = parent_context(traceparent)
    token = otel_context.attach(ctx) if ctx is not None else None
    try:
        with tracer().start_as_current_span(
            name, kind=kind, attributes=dict(attributes or {})
        ) as span:
            yield span
    finally:
        if token is not None:
            otel_context.detach(token)


def record_critical(name: str, attributes: Mapping[str, Any]) -> None:
    """Record a critical-path occurrence (e.g. a constitutional-hash failure) as a span of its
    own, sampled by the critical ratio whatever the request's own sampling was, linked to the
    request's span."""
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid else []
    span = tracer().start_span(
        name,
        context=Context(),
        links=links,
        attributes={**attributes, CRITICAL: True},
    )
    span.end()


def log_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, as hex, for log records; None without one."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
