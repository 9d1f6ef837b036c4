"""gunicorn reads this file from the working directory by default (``gunicorn growalert.wsgi``
in scripts/run_all.sh, the Dockerfile and docker-compose.yml)."""

from __future__ import annotations

import os
from typing import Any

from gunicorn import glogging  # type: ignore[import-untyped]

LIVE_PREFIX = "/app/live/"  # growalert/pages/live_wsgi.py


class Logger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger without the access line of a live page's unchanged poll: a 304 to
    ``/app/live/...`` (growalert/pages/live_wsgi.py answers it in front of Django). Each open
    tab asks every 1.5 s; with ``--access-logfile`` (``make run``) 100 tabs wrote 65 lines a
    second that say nothing, each costing about as much CPU as the rest of the poll
    (bench/bench_live_poll.py --access-log). Every other request is logged as before."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if getattr(resp, "status_code", None) == 304 and environ.get("PATH_INFO", "").startswith(
            LIVE_PREFIX
        ):
            return
        super().access(resp, req, environ, request_time)


logger_class = Logger


def child_exit(server: Any, worker: Any) -> None:
    """prometheus_client multiprocess bookkeeping for a gunicorn worker that exits (runs in the
    master, which reads the settings module but does not set Django up)."""
    from django.conf import settings
    from prometheus_client import multiprocess

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")
    multiprocess.mark_process_dead(worker.pid, settings.PROMETHEUS_MULTIPROC_DIR)  # type: ignore[no-untyped-call]


def post_fork(server: Any, worker: Any) -> None:
    """Tracing is set up where growalert.wsgi is imported: in each worker after the fork. With
    ``--preload`` that import happened in the master, before the fork: set it up again here,
    in the worker (the span exporter's thread does not survive a fork)."""
    if not server.cfg.preload_app:
        return
    from django.conf import settings

    from observability import tracing

    tracing.init(
        service=f"{settings.TRACING_SERVICE_NAME}-web",
        ratio=settings.TRACING_SAMPLE_RATIO,
        web=True,
    )
