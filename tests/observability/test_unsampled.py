"""What an unsampled request does not pay for (observability/unsampled.py), with the SDK's own
tracer provider and in-memory exporter (never set as this process's global provider): the
decision taken at the door is the one the root sampler follows, an unsampled request runs
under an unsampled context (what a task it sends inherits) and never enters the Django
instrumentation's middleware, and the psycopg, redis and httpx instrumentations do nothing
under an unsampled parent while a sampled parent gets all their spans (real Django, Postgres,
Redis and a loopback HTTP server; the instrumentations are undone after each test)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
import redis
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
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
        return [b""]

    unsampled.with_decision(app, ratio)(environ or {}, lambda *a: None)
    return seen


def test_an_unsampled_request_runs_under_an_unsampled_context():
    seen = served(0.0)
    assert seen["span"].is_valid
    assert not seen["span"].trace_flags.sampled
    assert seen["traceparent"].endswith("-00")  # a task sent from it follows: not sampled
    assert not trace.get_current_span().get_span_context().is_valid  # detached after


def test_a_sampled_request_goes_through_the_middleware_whose_root_is_sampled(recorded):
    provider, exporter = recorded
    tracer = provider.get_tracer("test")
    roots: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
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
    assert not seen["span"].is_valid  # the door set nothing: the middleware reads the header


def test_without_a_decision_the_root_follows_the_trace_id_ratio(recorded):
    provider, _ = recorded
    tracer = provider.get_tracer("test")
    sampled = 0
    for _ in range(400):
        with tracer.start_as_current_span("tick") as span:
            sampled += span.get_span_context().trace_flags.sampled
    assert 120 < sampled < 280  # about half, at 0.5


def unsampled_parent() -> trace.NonRecordingSpan:
    return trace.NonRecordingSpan(
        trace.SpanContext(trace_id=7, span_id=9, is_remote=False, trace_flags=trace.TraceFlags(0))
    )


def get(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }


@pytest.fixture
def django_instrumented(
    recorded: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """The Django instrumentation as tracing.init sets it up (our middleware in its place),
    with the test's provider; yields the names of the instrumentation middleware's methods
    each request entered."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.django.middleware.otel_middleware import (
        _DjangoMiddleware,
    )

    entered: list[str] = []
    for name in ("process_request", "process_view", "process_response"):
        real = getattr(_DjangoMiddleware, name)

        def spy(self: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
            entered.append(_name)
            return _real(self, *args)

        monkeypatch.setattr(_DjangoMiddleware, name, spy)
    monkeypatch.setattr(settings, "MIDDLEWARE", list(settings.MIDDLEWARE))
    # restored after the test, as the list of middleware
    monkeypatch.setattr(
        DjangoInstrumentor,
        "_opentelemetry_middleware",
        DjangoInstrumentor._opentelemetry_middleware,
    )
    unsampled.django_middleware_when_sampled()
    DjangoInstrumentor().instrument(tracer_provider=recorded[0])
    try:
        yield entered
    finally:
        DjangoInstrumentor().uninstrument()


@pytest.mark.django_db
def test_an_unsampled_request_never_enters_the_django_instrumentation(
    recorded, django_instrumented
):
    _, exporter = recorded
    assert settings.MIDDLEWARE[0] == "observability.unsampled.DjangoMiddlewareWhenSampled"
    statuses: list[str] = []
    app = WSGIHandler()
    for ratio in (0.0, 1.0):
        body = unsampled.with_decision(app, ratio)(get("/healthz"), lambda s, h: statuses.append(s))
        body.close()  # type: ignore[attr-defined]
        if ratio == 0.0:
            assert django_instrumented == []
            assert exporter.get_finished_spans() == ()
    assert statuses == ["200 OK", "200 OK"]
    assert django_instrumented == ["process_request", "process_view", "process_response"]
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET healthz"
    assert span.kind == trace.SpanKind.SERVER


class Hello(BaseHTTPRequestHandler):
    traceparents: list[str | None] = []

    def do_GET(self) -> None:
        Hello.traceparents.append(self.headers.get("traceparent"))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def children_instrumented(
    recorded: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """psycopg, redis and httpx instrumented as tracing.init does, with the test's provider;
    yields the instrumentations whose wrapper was entered (each asks first whether
    instrumentation is enabled: that question is spied on)."""
    from opentelemetry.instrumentation import dbapi
    from opentelemetry.instrumentation import httpx as otel_httpx
    from opentelemetry.instrumentation import redis as otel_redis
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    entered: list[str] = []
    for module, function, name in (
        (dbapi, "is_instrumentation_enabled", "psycopg"),
        (otel_redis, "is_instrumentation_enabled", "redis"),
        (otel_httpx, "is_http_instrumentation_enabled", "httpx"),
    ):
        real = getattr(module, function)

        def spy(_real: Any = real, _name: str = name) -> bool:
            entered.append(_name)
            return bool(_real())

        monkeypatch.setattr(module, function, spy)
    connection.ensure_connection()  # Django's own stays as it was (not instrumented)
    provider = recorded[0]
    instrumentors: list[Any] = [
        PsycopgInstrumentor(),
        RedisInstrumentor(),
        HTTPXClientInstrumentor(),
    ]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=provider, enable_commenter=False)
    unsampled.gate_children()
    try:
        yield entered
    finally:
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        unsampled.ungate_database_statements()


def statement_command_pipeline_and_call(url: str) -> None:
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], password=s["PASSWORD"], dbname=s["NAME"]
    ) as db:
        db.execute("SELECT 1").fetchall()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.ping()
    pipe = client.pipeline()
    pipe.get("growalert:test:unsampled")
    pipe.execute()
    client.close()
    with httpx.Client() as http:
        http.get(url).raise_for_status()


@pytest.fixture
def hello() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hello.traceparents = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hello"
    server.shutdown()
    server.server_close()


@pytest.mark.django_db
def test_no_instrumentation_works_under_an_unsampled_parent(recorded, children_instrumented, hello):
    _, exporter = recorded
    token = otel_context.attach(trace.set_span_in_context(unsampled_parent()))
    try:
        statement_command_pipeline_and_call(hello)
    finally:
        otel_context.detach(token)
    assert children_instrumented == []  # none of the wrappers ran
    assert exporter.get_finished_spans() == ()
    assert Hello.traceparents == [None]  # no unsampled trace context sent out either


@pytest.mark.django_db
def test_a_sampled_parent_gets_every_child_span(recorded, children_instrumented, hello):
    provider, exporter = recorded

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with provider.get_tracer("test").start_as_current_span("tick") as root:
            assert root.get_span_context().trace_flags.sampled
            statement_command_pipeline_and_call(hello)
        return [b""]

    unsampled.with_decision(app, 1.0)({}, lambda *a: None)
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names[:4] == ["SELECT", "PING", "GET", "GET"], names  # pipeline GET, then HTTP GET
    tick = spans[-1]
    assert tick.name == "tick"
    for child in spans[:-1]:
        assert child.parent is not None
        assert child.parent.span_id == tick.context.span_id
        assert child.context.trace_id == tick.context.trace_id
    (sent,) = Hello.traceparents
    _, trace_id, span_id, flags = (sent or "").split("-")
    assert trace_id == f"{tick.context.trace_id:032x}"
    assert span_id == f"{spans[3].context.span_id:016x}"  # the httpx span
    assert int(flags, 16) & 1  # sampled
