"""Traces (OpenTelemetry) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: the SDK with an OTLP/HTTP
exporter and the instrumentations of Django, Celery, psycopg, httpx and redis. A web request,
or a beat tick, is one trace through the Celery tasks it sends (the Celery instrumentation puts
the context in the message), their InfluxDB queries, Postgres statements and deliveries.

Sampling: parent-based with a trace-id ratio at the root (``OTEL_TRACES_SAMPLER_ARG``, default
0.1): a task follows the decision of the request or tick that sent it, so traces are whole. A web
request is decided before Django (:func:`around_django`), and what is not sampled costs little:
no Django span, no child spans (observability/unsampled.py).

Set up once per process, after the fork: the web server's workers (growalert/serve.py) import
growalert.wsgi after forking, Celery pool processes at ``worker_process_init``, a solo or
threaded worker and beat at start (growalert/celery.py). Unset, none of the OpenTelemetry
packages is imported.

Never recorded: request or response headers (the instrumentations record none unless told to),
SQL parameters, Redis values, and the path or query of outgoing HTTP requests (a customer's
webhook or Slack URL is a secret): an httpx span keeps scheme, host and port only.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

_initialised_pid: int | None = None
_ratio = 0.1


def endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()


def enabled() -> bool:
    return bool(endpoint())


def origin_only(url: str) -> str:
    """``https://hooks.slack.com/services/T/B/secret?x=1`` -> ``https://hooks.slack.com``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return ""
    return f"{parts.scheme}://{host}{port}" if host else ""


_URL_KEYS = ("http.url", "url.full")


def _httpx_request_hook(span: Any, request: Any) -> None:
    url = str(getattr(request, "url", ""))
    if span.is_recording():
        for key in _URL_KEYS:
            span.set_attribute(key, origin_only(url))


def init(*, service: str, ratio: float, web: bool = False) -> bool:
    """Sets tracing up in this process (once; again in a forked child); False when off."""
    global _initialised_pid, _ratio
    if not enabled():
        return False
    if _initialised_pid == os.getpid():
        return True
    first = _initialised_pid is None
    _initialised_pid = os.getpid()
    _ratio = max(0.0, min(ratio, 1.0))

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    from observability.unsampled import DecidedRoot

    if first:
        provider = TracerProvider(
            resource=Resource.create({"service.name": service}),
            sampler=ParentBased(DecidedRoot(_ratio)),
        )
        # reads OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces), _HEADERS, _TIMEOUT itself
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    _instrument(web=web)
    return True


def _instrument(*, web: bool) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    from observability import unsampled

    instrumentors: list[tuple[Any, dict[str, Any]]] = [
        (CeleryInstrumentor(), {}),  # type: ignore[no-untyped-call]
        (HTTPXClientInstrumentor(), {"request_hook": _httpx_request_hook}),
        (PsycopgInstrumentor(), {"enable_commenter": False}),
        (RedisInstrumentor(), {}),
    ]
    if web:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        # Its middleware, for the requests not decided unsampled at the door.
        unsampled.django_middleware_when_sampled()
        instrumentors.append((DjangoInstrumentor(), {}))
    for instrumentor, options in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(**options)
    # Statements, commands and HTTP calls: no instrumentation work under an unsampled span.
    unsampled.gate_children()


def around_django(app: Any) -> Any:
    """Django's WSGI application with each request's sampling decided before it
    (observability/unsampled.py); ``app`` itself when tracing is off."""
    if _initialised_pid is None:
        return app
    from observability import unsampled

    return unsampled.with_decision(app, _ratio)


def flush(timeout_ms: int = 5000) -> None:
    """Exports what is buffered (a process about to exit)."""
    if _initialised_pid is None:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_ms)
