"""Loopback receivers for what growalert sends out about itself: Sentry envelopes and OTLP/HTTP
traces, each a small threaded HTTP server that parses what it gets."""

from __future__ import annotations

import gzip
import json
import os
import socket
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

EPHEMERAL_START = 32768


def free_port(base: int = 26000) -> int:
    """A free loopback port below the ephemeral range (spread by pid between test runs)."""
    return free_ports(1, base)[0]


def free_ports(count: int, base: int = 26000) -> list[int]:
    """``count`` different free loopback ports below the ephemeral range: each is held bound
    until all are found, so two calls in a row cannot hand out the same port."""
    start = base + (os.getpid() % 200) * 20
    held: list[socket.socket] = []
    try:
        for port in [*range(start, EPHEMERAL_START - 1), *range(base, start)]:
            probe = socket.socket()
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                probe.close()
                continue
            held.append(probe)
            if len(held) == count:
                return [int(s.getsockname()[1]) for s in held]
    finally:
        for probe in held:
            probe.close()
    raise RuntimeError("not enough free ports below the ephemeral range")


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    encoding = (handler.headers.get("Content-Encoding") or "").lower()
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding not in ("", "identity"):
        raise ValueError(f"unexpected Content-Encoding {encoding}")
    return raw


class _Server:
    def __init__(self, handle: Callable[[str, dict[str, str], bytes], tuple[int, bytes, str]]):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, body, ctype = outer.handle(self.path, dict(self.headers), _body(self))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.handle = handle
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def parse_envelope(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """Sentry's envelope: a header line, then items (a header line and a payload, whose length
    the item header gives, or up to the next newline)."""
    items: list[tuple[dict[str, Any], bytes]] = []
    _, _, rest = data.partition(b"\n")
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        length = header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length + 1 :]
        items.append((header, payload))
    return items


@dataclass
class SentryReceiver:
    """``dsn`` points the SDK here; ``events`` are the error events received (parsed JSON),
    ``raw`` every request body as received (to look for secrets in everything sent)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = _Server(self._handle)

    @property
    def dsn(self) -> str:
        return f"http://0123456789abcdef0123456789abcdef@127.0.0.1:{self._server.port}/42"

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        with self._server.lock:
            self.raw.append(body)
            if path.endswith("/envelope/"):
                for header, payload in parse_envelope(body):
                    if header.get("type") == "event":
                        self.events.append(json.loads(payload))
            elif path.endswith("/store/"):
                self.events.append(json.loads(body))
        return 200, b"{}", "application/json"

    def close(self) -> None:
        self._server.close()


@dataclass
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP traces endpoint (protobuf): ``endpoint`` is OTEL_EXPORTER_OTLP_ENDPOINT."""

    spans: list[Span] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = _Server(self._handle)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        if path != "/v1/traces":
            return 404, b"", "text/plain"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self._server.lock:
            self.raw.append(body)
            self.spans.extend(spans)
        return 200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"

    def close(self) -> None:
        self._server.close()


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None
