"""The web server: granian serving ``growalert.wsgi`` (``python -m growalert.serve``, as
scripts/run_all.sh, the Dockerfile and docker-compose.yml run it).

granian answers HTTP in Rust and calls the WSGI application from a pool of blocking threads per
worker process. It replaced gunicorn's threaded worker, whose Python request machinery was about
half of the web process's CPU for ``POST /ingest`` (docs/devices.md "The web server"). Each worker
process imports ``growalert.wsgi`` itself, after the fork, which is where tracing is set up.

The access log (``--access-log``) is granian's, through Python logging with the project's
format (``LOG_FORMAT=json``: one JSON object per line); it leaves out a live page's unchanged
polls (``SkipUnchangedLivePolls``).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import Any

# live_wsgi.PREFIX, not imported: the master process configures logging (this filter) without
# Django set up, and live_wsgi needs it. tests/growalert/test_serve.py holds the two equal.
LIVE_PREFIX = "/app/live/"
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


class SkipUnchangedLivePolls(logging.Filter):
    """Leaves out the access line of a live page's unchanged poll: a 304 to ``/app/live/...``
    (growalert/pages/live_wsgi.py answers it in front of Django). Each open tab asks every
    1.5 s; 100 tabs wrote 65 lines a second that say nothing, each costing about as much CPU as
    the rest of the poll (bench/bench_live_poll.py --access-log). Every other request is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.args
        if not isinstance(line, dict):
            return True
        return not (line.get("status") == 304 and str(line.get("path", "")).startswith(LIVE_PREFIX))


def log_config(fmt: str, level: str) -> dict[str, Any]:
    """granian's loggers (``_granian``: start-up and worker lines; ``granian.access``) in the
    project's format (observability/logs.py), the live polls' 304s left out of the access log."""
    from observability import logs

    config = logs.config(fmt=fmt, level=level, quiet_tasks=())
    config["filters"]["live_polls"] = {"()": f"{__name__}.SkipUnchangedLivePolls"}
    config["handlers"]["access"] = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
        "formatter": fmt,
        "filters": ["live_polls"],
    }
    config["loggers"].update(
        {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        }
    )
    return config


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be between 1 and 256, not {value}")
    return value


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m growalert.serve", description=__doc__)
    parse.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parse.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parse.add_argument(
        "--workers",
        type=_positive,
        default=_positive(os.environ.get("WEB_WORKERS", "2")),
        help="worker processes (WEB_WORKERS, default 2: one per core)",
    )
    parse.add_argument(
        "--threads",
        type=_positive,
        default=_positive(os.environ.get("WEB_THREADS", "4")),
        help="WSGI threads per worker (WEB_THREADS, default 4)",
    )
    parse.add_argument("--access-log", action="store_true", help="one line per request")
    parse.add_argument("--app", default="growalert.wsgi:application", help=argparse.SUPPRESS)
    return parse


def main(argv: Sequence[str] | None = None) -> None:
    from django.conf import settings
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")
    args = parser().parse_args(argv)
    Granian(
        args.app,
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=args.workers,
        blocking_threads=args.threads,
        websockets=False,
        log_level=LogLevels(settings.LOG_LEVEL.lower()),
        log_dictconfig=log_config(settings.LOG_FORMAT, settings.LOG_LEVEL),
        log_access=args.access_log,
        log_access_format=ACCESS_FORMAT,
        # A worker that dies (a crash in a C extension, the OOM killer) is started again, as
        # gunicorn's master did.
        respawn_failed_workers=True,
    ).serve()


if __name__ == "__main__":
    main()
