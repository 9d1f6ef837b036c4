"""Unset, the operations settings cost nothing: sentry_sdk and OpenTelemetry are not even
imported by the web or the worker entry points, and logs are plain text."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT

PROBE = """
import logging, sys
import growalert.wsgi
from growalert.celery import app
app.loader.import_default_modules()
logging.getLogger("probe").warning("plain line")
# (redis-py imports the OpenTelemetry API and parts of the SDK by itself when installed)
ours = ("sentry_sdk", "opentelemetry.instrumentation", "opentelemetry.exporter")
loaded = sorted(m for m in sys.modules if m.startswith(ours))
print("LOADED", loaded)
from opentelemetry import trace
print("PROVIDER", type(trace.get_tracer_provider()).__name__)
"""


def test_nothing_is_imported_or_set_up_when_unset():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SENTRY_", "OTEL_")) and k != "LOG_FORMAT"
    }
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", PROBE],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "growalert.settings", "DJANGO_DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "LOADED []" in result.stdout
    assert "PROVIDER ProxyTracerProvider" in result.stdout  # no SDK provider was set
    plain = [line for line in result.stderr.splitlines() if "plain line" in line]
    assert plain
    assert not plain[0].startswith("{")
    assert " WARNING probe plain line" in plain[0]
