"""What an unsampled request does not pay for (observability/unsampled.py), with the SDK's own
tracer provider and in-memory exporter (never set as this process's global provider): the
decision taken at the door is the one the root sampler follows, an unsampled request runs
under an unsampled context (what a task it sends inherits) that the Django middleware skips,
and no child span is started under an unsampled parent while a sampled parent gets them all."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased

from observability import unsampled


@pytest.fixture
def recorded() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(unsampled.DecidedRoot(0.5)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def served(ratio: float, environ: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the app behind the door saw: the current span context, the traceparent a task
    sent from it would carry, and whether the Django middleware would skip it."""
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["span"] = trace.get_current_span().get_span_context()
        carrier: dict[str, str] = {}
        inject(carrier)
        seen["traceparent"] = carrier.get("traceparent")
        seen["django_skips"] = unsampled.SkipUndecided(NoneExcluded()).url_disabled("/x")
        return [b""]

    unsampled.with_decision(app, ratio)(environ or {}, lambda *a: None)
    return seen


class NoneExcluded:
    def url_disabled(self, url: str) -> bool:
        return False


def test_an_unsampled_request_runs_under_an_unsampled_context_the_middleware_skips():
    seen = served(0.0)
    assert seen["span"].is_valid
    assert not seen["span"].trace_flags.sampled
    assert seen["traceparent"].endswith("-00")  # a task sent from it follows: not sampled
    assert seen["django_skips"]
    assert not trace.get_current_span().get_span_context().is_valid  # detached after


def test_a_sampled_request_goes_through_the_middleware_whose_root_is_sampled(recorded):
    provider, exporter = recorded
    tracer = provider.get_tracer("test")
    roots: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        assert not unsampled.SkipUndecided(NoneExcluded()).url_disabled("/x")
        with tracer.start_as_current_span("GET /monitors") as span:  # as the middleware does
            roots.append(span.get_span_context().trace_flags.sampled)
        return [b""]

    for _ in range(20):  # the root sampler's own ratio is 0.5: the door's decision wins
        unsampled.with_decision(app, 1.0)({}, lambda *a: None)
    assert roots == [True] * 20
    assert len(exporter.get_finished_spans()) == 20


def test_a_request_with_a_traceparent_follows_its_caller():
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    seen = served(0.0, {"HTTP_TRACEPARENT": caller})
    assert not seen["django_skips"]  # the middleware reads it and follows it
    assert not seen["span"].is_valid  # the door set nothing


def test_without_a_decision_the_root_follows_the_trace_id_ratio(recorded):
    provider, _ = recorded
    tracer = provider.get_tracer("test")
    sampled = 0
    for _ in range(400):
        with tracer.start_as_current_span("tick") as span:
            sampled += span.get_span_context().trace_flags.sampled
    assert 120 < sampled < 280  # about half, at 0.5


def test_no_child_span_is_started_under_an_unsampled_parent(recorded):
    provider, exporter = recorded
    children = unsampled.ChildrenOfSampledOnly(provider).get_tracer("psycopg")
    parent = trace.NonRecordingSpan(
        trace.SpanContext(trace_id=7, span_id=9, is_remote=False, trace_flags=trace.TraceFlags(0))
    )
    token = otel_context.attach(trace.set_span_in_context(parent))
    try:
        with children.start_as_current_span("SELECT") as span:
            assert span is parent  # handed back: records nothing
            assert not span.is_recording()
        assert children.start_span("GET") is parent
    finally:
        otel_context.detach(token)
    assert exporter.get_finished_spans() == ()


def test_a_sampled_parent_gets_its_child_spans(recorded):
    provider, exporter = recorded
    tracer = provider.get_tracer("django")
    children = unsampled.ChildrenOfSampledOnly(provider).get_tracer("psycopg")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with tracer.start_as_current_span("GET /monitors") as root:
            with children.start_as_current_span("SELECT") as child:
                assert child.is_recording()
                assert child.get_span_context().trace_id == root.get_span_context().trace_id
            with (
                pytest.raises(ValueError, match="recorded"),
                children.start_as_current_span("UPDATE"),
            ):
                raise ValueError("recorded on the span, then raised")
        return [b""]

    unsampled.with_decision(app, 1.0)({}, lambda *a: None)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"GET /monitors", "SELECT", "UPDATE"}
    assert spans["SELECT"].parent.span_id == spans["GET /monitors"].context.span_id
    assert spans["UPDATE"].status.status_code == trace.StatusCode.ERROR
