"""A fake InfluxDB 2.x query endpoint on loopback (no 2.x server can run on this machine).

It answers ``POST /api/v2/query`` with annotated CSV exactly as documented for InfluxDB 2.x
(``#datatype``, ``#group`` and ``#default`` rows, then a header and records) and records every
request, so tests can assert on the Flux and the bound ``extern`` options that were sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMPTY = ""


def annotated_csv(
    values: list[float], *, measurement: str, field_name: str, tags: dict[str, str]
) -> str:
    """One table of aggregated rows, as InfluxDB 2.x returns the result of ``mean()`` & co."""
    if not values:
        return EMPTY
    tag_names = sorted(tags)
    header = [
        "",
        "result",
        "table",
        "_start",
        "_stop",
        "_value",
        "_field",
        "_measurement",
        *tag_names,
    ]
    datatypes = ["#datatype", "string", "long", "dateTime:RFC3339", "dateTime:RFC3339", "double",
                 "string", "string", *(["string"] * len(tag_names))]  # fmt: skip
    groups = [
        "#group",
        "false",
        "false",
        "true",
        "true",
        "false",
        "true",
        "true",
        *(["true"] * len(tag_names)),
    ]
    defaults = ["#default", "_result", *([""] * (len(header) - 2))]
    window = ["2026-11-24T08:00:00Z", "2026-11-24T08:05:00Z"]
    tag_values = [tags[t] for t in tag_names]
    rows = [["", "", "0", *window, repr(v), field_name, measurement, *tag_values] for v in values]
    lines = [datatypes, groups, defaults, header, *rows]
    return "\r\n".join(",".join(line) for line in lines) + "\r\n\r\n"


def grouped_csv(columns: list[tuple[str, str, bool]], tables: list[list[list[str]]]) -> str:
    """Several tables of one schema, as InfluxDB 2.x returns a grouped answer (one table per
    series, its group key columns in every row): ``columns`` are (name, datatype, in the
    group key) after ``result`` and ``table``; each table is a list of rows of cells."""
    header = ["", "result", "table", *(name for name, _, _ in columns)]
    datatypes = ["#datatype", "string", "long", *(kind for _, kind, _ in columns)]
    groups = ["#group", "false", "false", *("true" if key else "false" for _, _, key in columns)]
    defaults = ["#default", "_result", *([""] * (len(header) - 2))]
    rows = [["", "", str(index), *row] for index, table in enumerate(tables) for row in table]
    lines = [datatypes, groups, defaults, header, *rows]
    return "\r\n".join(",".join(line) for line in lines) + "\r\n\r\n"


@dataclass
class FakeInfluxDB2:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    csv: str = EMPTY
    status: int = 200
    version: str = "v2.7.11"
    buckets: set[str] | None = None  # None: every bucket exists; else the others are 404
    # Answers by query: called with the Flux text and its bound options (name -> value); the
    # CSV it returns answers that request, None falls back to ``csv``.
    route: Callable[[str, dict[str, Any]], str | None] | None = None


def bound_options(body: dict[str, Any]) -> dict[str, Any]:
    """The options bound in a query's ``extern`` (as growalert sends them), name -> value."""
    found: dict[str, Any] = {}
    for statement in (body.get("extern") or {}).get("body", []):
        assignment = statement.get("assignment", {})
        found[assignment.get("id", {}).get("name")] = assignment.get("init", {}).get("value")
    return found


def _bound_bucket(body: dict[str, Any]) -> str | None:
    """The ``p_bucket`` option bound in a query's ``extern``."""
    bucket = bound_options(body).get("p_bucket")
    return None if bucket is None else str(bucket)


def serve() -> tuple[FakeInfluxDB2, ThreadingHTTPServer]:
    fake = FakeInfluxDB2(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # /ping and /health
            self.send_response(204)
            self.send_header("X-Influxdb-Version", fake.version)
            self.end_headers()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fake.requests.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": json.loads(body or b"{}"),
                }
            )
            bucket = _bound_bucket(fake.requests[-1]["body"])
            if fake.buckets is not None and bucket is not None and bucket not in fake.buckets:
                # As InfluxDB 2.x answers ``from(bucket:)`` for a bucket it does not know.
                payload = json.dumps(
                    {
                        "code": "not found",
                        "message": "failed to initialize execute state: "
                        f'could not find bucket "{bucket}"',
                    }
                ).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
            elif fake.status != 200:
                payload = json.dumps(
                    {"code": "unauthorized", "message": "unauthorized access"}
                ).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
            else:
                sent = fake.requests[-1]["body"]
                query, bound = sent.get("query", ""), bound_options(sent)
                routed = fake.route(query, bound) if fake.route else None
                payload = (fake.csv if routed is None else routed).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
