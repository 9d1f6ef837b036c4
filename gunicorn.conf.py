"""gunicorn reads this file from the working directory by default (``gunicorn growalert.wsgi``
in scripts/run_all.sh, the Dockerfile and docker-compose.yml)."""

from __future__ import annotations

import os
from typing import Any


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
