"""Celery wiring for logs: each task run's log lines carry its id and name (and the request id
of the web request that sent it), and a worker's or beat's own log handlers get the same
filters and format as the web's."""

from __future__ import annotations

import logging
from typing import Any

from celery import signals

from observability import context, logs

HEADER = "growalert_request_id"

_tokens: dict[str, list[Any]] = {}


def _request_id_of(task: Any) -> str | None:
    request = getattr(task, "request", None)
    value = getattr(request, HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(HEADER)
    return str(value)[:128] if value else None


def _log_settings() -> tuple[str, list[str]]:
    """Read when a worker sets its logging up, not at import (settings may not be ready)."""
    from django.conf import settings

    return getattr(settings, "LOG_FORMAT", "plain"), getattr(settings, "LOG_QUIET_TASKS", [])


def connect() -> None:
    """Connects the handlers (once per process: the signals hold them strongly)."""

    @signals.before_task_publish.connect(weak=False)
    def _carry_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        request_id = context.get("request_id")
        if request_id is not None and headers is not None:
            headers.setdefault(HEADER, request_id)

    @signals.task_prerun.connect(weak=False)
    def _bind(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
        if task_id is None:
            return
        _tokens[task_id] = context.set_fields(
            task_id=task_id,
            task_name=getattr(task, "name", None),
            request_id=_request_id_of(task),
        )

    @signals.task_postrun.connect(weak=False)
    def _unbind(task_id: str | None = None, **kwargs: Any) -> None:
        tokens = _tokens.pop(task_id or "", None)
        if tokens:
            try:
                context.reset(tokens)
            except ValueError:  # set in another context (should not happen): just clear
                context.set_fields(task_id=None, task_name=None, request_id=None)

    @signals.after_setup_logger.connect(weak=False)
    @signals.after_setup_task_logger.connect(weak=False)
    def _adopt(logger: logging.Logger | None = None, **kwargs: Any) -> None:
        if logger is not None:
            fmt, quiet = _log_settings()
            logs.adopt(logger, fmt=fmt, quiet_tasks=quiet)


def _start_tracing(role: str) -> None:
    from django.conf import settings

    from observability import tracing

    tracing.init(
        service=f"{settings.TRACING_SERVICE_NAME}-{role}", ratio=settings.TRACING_SAMPLE_RATIO
    )


def connect_tracing() -> None:
    """Traces (observability.tracing) in worker pool processes after the fork, in a solo or
    threaded worker and in beat at start; what is buffered is exported before they exit.
    Nothing is imported when OTEL_EXPORTER_OTLP_ENDPOINT is unset."""
    from observability import tracing

    if not tracing.enabled():
        return

    @signals.worker_process_init.connect(weak=False)
    def _pool_process(**kwargs: Any) -> None:
        _start_tracing("worker")

    @signals.worker_init.connect(weak=False)
    def _worker(sender: Any = None, **kwargs: Any) -> None:
        pool = getattr(sender, "pool_cls", None)
        if "prefork" not in str(getattr(pool, "__module__", pool)):  # no fork follows
            _start_tracing("worker")

    @signals.beat_init.connect(weak=False)
    def _beat(**kwargs: Any) -> None:
        _start_tracing("beat")

    @signals.worker_process_shutdown.connect(weak=False)
    @signals.worker_shutdown.connect(weak=False)
    def _flush(**kwargs: Any) -> None:
        tracing.flush()
