"""What an unsampled web request or task does not pay for (imported only with tracing on).

At 10 % sampling, nine requests in ten are recorded nowhere, yet the instrumentations did the
same work for them: the Django middleware resolved the URL a second time for a span name,
gathered the request's attributes, started, activated and ended a span; every Postgres
statement, Redis command and HTTP call started and ended a child span through the SDK's
sampler. bench/bench_observability.py measured that at about 20 % more CPU per API request.

- **The decision at the door** (:func:`with_decision`, around Django in growalert/wsgi.py): a
  request that brings no ``traceparent`` is sampled or not here, at the configured ratio. A
  sampled one goes through the instrumented Django as before (the root sampler follows the
  decision: :class:`DecidedRoot`); an unsampled one runs under an unsampled span context of
  its own — a task it sends carries that (``traceparent`` flags 00) and follows the decision,
  as with the middleware's span — and the Django middleware leaves it alone
  (:class:`SkipUndecided`, through the middleware's own exclusion check). A request with a
  ``traceparent`` follows its caller, through the middleware, as before.
- **Children of an unsampled span are not started** (:class:`ChildrenOfSampledOnly`, the
  tracer provider given to the psycopg, redis and httpx instrumentations): the parent-based
  sampler would drop them anyway; the instrumentation gets the unsampled parent back, which
  records nothing and propagates the same decision.
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

# True/False: this request's root was decided at the door; None: decide by trace id.
_decided: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "growalert_trace_decided", default=None
)
_ids = RandomIdGenerator()
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DecidedRoot(Sampler):
    """The root sampler: the door's decision when there was one, else the trace-id ratio."""

    def __init__(self, ratio: float) -> None:
        self._ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        decided = _decided.get()
        sampler = self._ratio if decided is None else ALWAYS_ON if decided else ALWAYS_OFF
        return sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"DecidedRoot{{{self._ratio.get_description()}}}"


def with_decision(app: WSGIApp, ratio: float) -> WSGIApp:
    """``app`` with each request's sampling decided before it (see the module's docstring)."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "HTTP_TRACEPARENT" in environ:
            return app(environ, start_response)
        sampled = random.random() < ratio  # a sampling coin, not a secret
        decided = _decided.set(sampled)
        attached = None if sampled else otel_context.attach(trace.set_span_in_context(_unsampled()))
        try:
            return app(environ, start_response)
        finally:
            if attached is not None:
                otel_context.detach(attached)
            _decided.reset(decided)

    return application


def _unsampled() -> trace.NonRecordingSpan:
    return trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=_ids.generate_trace_id(),
            span_id=_ids.generate_span_id(),
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
        )
    )


class SkipUndecided:
    """Stands in for the Django middleware's list of excluded URLs: it also excludes a request
    decided unsampled at the door."""

    def __init__(self, excluded: Any) -> None:
        self._excluded = excluded

    def url_disabled(self, url: str) -> bool:
        return _decided.get() is False or bool(self._excluded.url_disabled(url))


def skip_unsampled_requests_in_django() -> None:
    from opentelemetry.instrumentation.django.middleware import otel_middleware

    middleware = otel_middleware._DjangoMiddleware
    if not isinstance(middleware._excluded_urls, SkipUndecided):
        middleware._excluded_urls = SkipUndecided(middleware._excluded_urls)  # type: ignore[assignment]


def _unsampled_parent(parent: otel_context.Context | None) -> trace.Span | None:
    span = trace.get_current_span(parent)
    found = span.get_span_context()
    return span if found.is_valid and not found.trace_flags.sampled else None


class _Tracer(trace.Tracer):
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self, name: str, context: otel_context.Context | None = None, *args: Any, **kwargs: Any
    ) -> trace.Span:
        parent = _unsampled_parent(context)
        if parent is not None:
            return parent
        return self._tracer.start_span(name, context, *args, **kwargs)

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: otel_context.Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        parent = _unsampled_parent(context)
        if parent is not None:
            yield parent
            return
        with self._tracer.start_as_current_span(name, context, *args, **kwargs) as span:
            yield span


class ChildrenOfSampledOnly(trace.TracerProvider):
    """The SDK's tracer provider, except that a span whose parent is unsampled is not started:
    the instrumentation gets that parent back (it records nothing)."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _Tracer(self._provider.get_tracer(*args, **kwargs))
