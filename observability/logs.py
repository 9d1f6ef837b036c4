"""Log formatting: human-readable by default, one JSON object per line with ``LOG_FORMAT=json``.

Every record gets the context fields (``context.FIELDS``: request id, Celery task id and name,
monitor id, account id) from ``ContextFilter``; a value passed with ``extra=`` wins over the
context's. ``QuietTicks`` turns Celery's per-tick INFO lines ("Task … received", "… succeeded",
"Sending due task …") for the periodic and per-batch tasks into DEBUG: with the dispatcher every
second they were most of a worker's log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from observability import context

# Celery's loggers that write one INFO line per task run or beat tick.
_TICK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


class ContextFilter(logging.Filter):
    """Copies the context fields onto the record (never over a value given with ``extra=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context.current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class QuietTicks(logging.Filter):
    """Demotes Celery's INFO lines about the ``tasks`` named to DEBUG, and drops them unless
    their logger is enabled for DEBUG (``LOG_LEVEL=DEBUG`` / ``--loglevel DEBUG``)."""

    def __init__(self, tasks: Iterable[str] = ()) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def _task_of(self, record: logging.LogRecord) -> object:
        args = record.args
        if isinstance(args, dict):
            return args.get("name")
        if isinstance(args, tuple) and len(args) >= 2:  # beat: (entry name, task name)
            return args[1]
        return None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith(_TICK_LOGGERS):
            return True
        if self._task_of(record) not in self.tasks:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC, ISO 8601 with ms), level, logger, message,
    the context fields that are set, and the traceback as ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in context.FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def config(*, fmt: str, level: str, quiet_tasks: Iterable[str]) -> dict[str, Any]:
    """The ``LOGGING`` dict: ``fmt`` is ``json`` or ``plain``."""
    if fmt not in ("json", "plain"):
        raise ValueError(f"LOG_FORMAT must be json or plain, not {fmt!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": PLAIN_FORMAT},
            "json": {"()": "observability.logs.JsonFormatter"},
        },
        "filters": {
            "context": {"()": "observability.logs.ContextFilter"},
            "quiet_ticks": {"()": "observability.logs.QuietTicks", "tasks": list(quiet_tasks)},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["context", "quiet_ticks"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own console handler (DEBUG only) would print its lines a second time.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.db.backends": {"level": "INFO"},
            "httpx": {"level": "WARNING"},
        },
    }


def adopt(logger: logging.Logger, *, fmt: str, quiet_tasks: Iterable[str]) -> None:
    """For a logger whose handlers someone else set up (a Celery worker or beat replaces the
    root logger's handlers with its own): the same filters, and the JSON formatter if asked."""
    for handler in logger.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
            handler.addFilter(QuietTicks(quiet_tasks))
        if fmt == "json":
            handler.setFormatter(JsonFormatter())
