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
  as with the middleware's span — and never enters the Django instrumentation's middleware
  (:class:`DjangoMiddlewareWhenSampled` stands in its place in ``MIDDLEWARE``). A request with
  a ``traceparent`` follows its caller, through the middleware, as before.
- **Nothing is instrumented under an unsampled span** (:func:`gate_children`): a Postgres
  statement, a Redis command or pipeline, an HTTP call runs as without the instrumentation —
  not only no span (the parent-based sampler would drop it anyway), none of the wrapper's own
  work either (span name and attributes from the SQL or the command, context look-ups,
  metrics). An HTTP call under an unsampled span therefore sends
  no ``traceparent`` (it would have said "not sampled").

bench/profile_observability_request.py measures the CPU per request in process, and shows
what a mode calls that another does not.
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import wrapt
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


def _under_unsampled() -> bool:
    """The current span is an unsampled one (a request decided so at the door, a task sent by
    one, a tick the root sampler dropped): nothing under it is recorded."""
    found = trace.get_current_span().get_span_context()
    return found.is_valid and not found.trace_flags.sampled


class DjangoMiddlewareWhenSampled:
    """The Django instrumentation's middleware for the requests it may record; a request
    decided unsampled at the door goes straight to the next middleware. Its ``process_view``
    and ``process_exception`` (Django calls them for every request) skip those too."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from opentelemetry.instrumentation.django.middleware.otel_middleware import (
            _DjangoMiddleware,
        )

        self.get_response = get_response
        self._traced: Any = _DjangoMiddleware(get_response)  # type: ignore[no-untyped-call]

    def __call__(self, request: Any) -> Any:
        if _decided.get() is False:
            return self.get_response(request)
        return self._traced(request)

    def process_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> Any:
        if _decided.get() is False:
            return None
        return self._traced.process_view(request, view, args, kwargs)

    def process_exception(self, request: Any, exception: Exception) -> Any:
        if _decided.get() is False:
            return None
        return self._traced.process_exception(request, exception)


def django_middleware_when_sampled() -> None:
    """Before ``DjangoInstrumentor().instrument()``: it inserts (and uninstrument removes)
    :class:`DjangoMiddlewareWhenSampled` in ``MIDDLEWARE`` instead of its own middleware."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    DjangoInstrumentor._opentelemetry_middleware = (
        f"{DjangoMiddlewareWhenSampled.__module__}.{DjangoMiddlewareWhenSampled.__qualname__}"
    )


class _Gate(wrapt.FunctionWrapper):  # type: ignore[type-arg]
    """An instrumentation's wrapper, called only when the current span is not unsampled."""


def _gated(traced: Any) -> _Gate:
    tracing = traced._self_wrapper

    def gate(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _under_unsampled():
            return wrapped(*args, **kwargs)
        return tracing(wrapped, instance, args, kwargs)

    return _Gate(traced.__wrapped__, gate)


def gate_wrapped_methods(*classes: type) -> int:
    """Every method of ``classes`` an instrumentation wrapped (redis's ``execute_command`` and
    pipeline ``execute``, httpx's transports' ``handle_request``) runs the original, not the
    instrumentation's wrapper, under an unsampled span: the wrapper's own work (building the
    span's name and attributes from the command, the context look-ups, its metrics) is not
    done for a span that would not be recorded. ``uninstrument()`` still unwraps them (the
    gate wraps the original). Returns how many were gated."""
    gated = 0
    for cls in classes:
        for name, value in list(vars(cls).items()):
            if isinstance(value, wrapt.FunctionWrapper) and not isinstance(value, _Gate):
                setattr(cls, name, _gated(value))
                gated += 1
    return gated


_traced_execution: Any = None


def gate_database_statements() -> None:
    """The database instrumentation (psycopg, through the DB-API one) runs a statement under
    an unsampled span as the cursor would without it: no span name from the SQL, no
    attributes, no context look-ups, no metrics. :func:`ungate_database_statements` undoes it."""
    global _traced_execution
    from opentelemetry.instrumentation.dbapi import CursorTracer

    if _traced_execution is not None:
        return
    _traced_execution = traced_execution = CursorTracer.traced_execution

    def execution(self: Any, cursor: Any, query_method: Any, *args: Any, **kwargs: Any) -> Any:
        if _under_unsampled():
            return query_method(*args, **kwargs)
        return traced_execution(self, cursor, query_method, *args, **kwargs)

    CursorTracer.traced_execution = execution  # type: ignore[method-assign]


def ungate_database_statements() -> None:
    global _traced_execution
    from opentelemetry.instrumentation.dbapi import CursorTracer

    if _traced_execution is not None:
        CursorTracer.traced_execution = _traced_execution  # type: ignore[method-assign]
        _traced_execution = None


def gate_children() -> None:
    """After the psycopg, redis and httpx instrumentations: none of them does any work under
    an unsampled span (the parent-based sampler would drop what they start anyway)."""
    import httpx
    import redis
    import redis.asyncio

    gate_database_statements()
    gate_wrapped_methods(
        redis.Redis,
        redis.client.Pipeline,
        redis.asyncio.Redis,
        redis.asyncio.client.Pipeline,
        httpx.HTTPTransport,
        httpx.AsyncHTTPTransport,
    )
