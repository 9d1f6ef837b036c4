"""growalert/serve.py: the web server's options are bounded, and its log configuration leaves
out only a live page's unchanged polls (the end-to-end check, through the real server, is
tests/pages/test_live_access_log.py)."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from growalert import serve
from growalert.pages import live_wsgi


def access_record(status: int, path: str) -> logging.LogRecord:
    """An access line as granian logs it: the format and one dict of values."""
    line = {"addr": "127.0.0.1", "method": "GET", "path": path, "protocol": "HTTP/1.1"}
    return logging.LogRecord(
        "granian.access",
        logging.INFO,
        __file__,
        0,
        serve.ACCESS_FORMAT,
        ({**line, "status": status, "dt_ms": 1.25},),
        None,
    )


@pytest.mark.parametrize(
    ("status", "path", "kept"),
    [
        (304, "/app/live/dashboard", False),
        (200, "/app/live/dashboard", True),
        (304, "/static/app.css", True),
        (500, "/ingest", True),
    ],
)
def test_only_an_unchanged_live_poll_is_left_out(status: int, path: str, kept: bool) -> None:
    assert serve.SkipUnchangedLivePolls().filter(access_record(status, path)) is kept


def test_the_filter_knows_the_live_pages_prefix() -> None:
    assert serve.LIVE_PREFIX == live_wsgi.PREFIX


@pytest.mark.parametrize("option", ["--workers", "--threads"])
@pytest.mark.parametrize("value", ["0", "257", "-1"])
def test_workers_and_threads_are_bounded(option: str, value: str) -> None:
    with pytest.raises(SystemExit):
        serve.parser().parse_args([option, value])


def test_json_access_lines_are_one_object_each(capsys: pytest.CaptureFixture[str]) -> None:
    config = serve.log_config("json", "INFO")
    logging.config.dictConfig(config)
    try:
        access = logging.getLogger("granian.access")
        access.handle(access_record(200, "/ingest"))
        access.handle(access_record(304, "/app/live/dashboard"))
    finally:
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["message"] == '127.0.0.1 "GET /ingest HTTP/1.1" 200 1.2ms'
