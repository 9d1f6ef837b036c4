"""One deployment of growalert with every operations setting on: the web server (growalert.serve)
and a Celery worker on a private queue, both on the test database, writing JSON logs to files,
reporting errors to a loopback Sentry and traces to a loopback OTLP endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from django.db import connection

from tests.conftest import ROOT, start_celery_worker, start_web_server, stop_celery_worker
from tests.observability.receivers import OtlpReceiver, SentryReceiver, free_port


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The log file's JSON lines; a line that is not JSON fails the test (LOG_FORMAT=json
    promises one JSON object per line)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.strip() or not line.startswith("{"):
            # Celery's banner is not Python logging
            continue
        lines.append(json.loads(line))
    return lines


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


@dataclass
class Stack:
    url: str
    queue: str
    web_log: Path
    worker_log: Path
    sentry: SentryReceiver
    otlp: OtlpReceiver
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[str]


@pytest.fixture(scope="module")
def stack(django_db_setup: None, django_db_blocker: Any) -> Iterator[Stack]:
    with django_db_blocker.unblock():
        db_url = database_url()
    sentry, otlp = SentryReceiver(), OtlpReceiver()
    queue = f"test-ops-{os.getpid()}"
    env: dict[str, Any] = {
        "DATABASE_URL": db_url,
        "CELERY_QUEUE": queue,
        "LOG_FORMAT": "json",
        "SENTRY_DSN": sentry.dsn,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export within 0.2 s
        "WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true",
        "DJANGO_DEBUG": "true",
    }
    port = free_port(27000)
    web_log = ROOT / ".local" / "log" / "test-ops-web.log"
    web_log.parent.mkdir(parents=True, exist_ok=True)
    web_out: IO[bytes] = open(web_log, "wb")  # noqa: SIM115
    web = start_web_server(
        port,
        {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "tests.observability.crash_settings"},
        out=web_out,
    )
    worker, worker_out = start_celery_worker("ops", **env)
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "the web server")
        wait_for(
            lambda: "ready" in (ROOT / ".local" / "log" / "test-celery-ops.log").read_text(),
            60,
            "the worker",
        )
        yield Stack(
            url=url,
            queue=queue,
            web_log=web_log,
            worker_log=ROOT / ".local" / "log" / "test-celery-ops.log",
            sentry=sentry,
            otlp=otlp,
            web=web,
            worker=worker,
        )
    finally:
        web.terminate()
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            web.kill()
        web_out.close()
        stop_celery_worker(worker, worker_out)
        sentry.close()
        otlp.close()
