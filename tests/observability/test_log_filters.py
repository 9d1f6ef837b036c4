"""The filters and the scrubber on their own: what the deployment tests cannot vary cheaply
(the per-tick lines at DEBUG, extra= over the context, Sentry's breadcrumb and header shapes)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from observability import context, errors, logs

TICK = "monitors.tasks.dispatch_due_monitors"


@pytest.fixture
def capture() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    handler.addFilter(logs.QuietTicks([TICK]))
    logger = logging.getLogger("celery.app.trace")
    before = logger.level
    logger.addHandler(handler)
    yield stream, logger
    logger.removeHandler(handler)
    logger.setLevel(before)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_tick_lines_are_debug_and_shown_only_at_debug(capture):
    stream, logger = capture
    logger.setLevel(logging.INFO)
    logger.info("Task %(name)s[%(id)s] succeeded", {"name": TICK, "id": "a"})
    logger.info("Task %(name)s[%(id)s] succeeded", {"name": "other.task", "id": "b"})
    assert [line["message"] for line in lines(stream)] == ["Task other.task[b] succeeded"]

    logger.setLevel(logging.DEBUG)
    logger.info("Task %(name)s[%(id)s] succeeded", {"name": TICK, "id": "c"})
    assert lines(stream)[-1]["level"] == "DEBUG"
    assert lines(stream)[-1]["message"] == f"Task {TICK}[c] succeeded"


def test_extra_wins_over_the_context_and_exceptions_are_kept(capture):
    stream, logger = capture
    logger.setLevel(logging.INFO)
    with context.bound(monitor_id=1, account_id=2, request_id="r-123456789"):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed", extra={"monitor_id": 7})
    line = lines(stream)[-1]
    assert (line["monitor_id"], line["account_id"], line["request_id"]) == (7, 2, "r-123456789")
    assert "ValueError: boom" in str(line["exception"])
    logger.warning("outside")
    assert "monitor_id" not in lines(stream)[-1]


def test_the_scrubber_on_headers_breadcrumbs_and_urls():
    event = {
        "request": {
            "headers": [["Authorization", "Token ga_abcdef0123456789"], ["Accept", "*/*"]],
            "url": "https://user:hunter2pw@influx.example.com/query",
            "data": {"password": "x"},
        },
        "breadcrumbs": {
            "values": [
                {"message": "POST https://hooks.slack.com/services/T1/B2/abcdef 500"},
                {"data": {"stripe_key": "rk_live_abcdefgh", "count": 3}},
            ]
        },
        "extra": {"webhook_secret": "s3cret", "note": "whsec_abcdefgh and 4000 0566 5566 5556"},
    }
    text = json.dumps(errors.scrub(event))
    for secret in ("ga_abcdef", "hunter2pw", "hooks.slack.com", "rk_live", "s3cret", "whsec_"):
        assert secret not in text
    assert "4000 0566" not in text
    assert '["Accept", "*/*"]' in text
    assert '"count": 3' in text
    assert "influx.example.com/query" in text
