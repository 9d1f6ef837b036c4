"""GET /healthz (liveness), GET /readyz (readiness), GET /health/deps (diagnostics)."""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from growalert.health import heartbeat, probes

_STARTED = time.monotonic()


def format_uptime(seconds: float) -> str:
    """Go-style duration, as in the documented example: ``1m23s``, ``2h0m5s``."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "uptime": format_uptime(time.monotonic() - _STARTED)})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = probes.run_all()
    checks: dict[str, str] = {r.name: r.status for r in results}
    body: dict[str, object] = {"status": "ready", "checks": checks}
    postgres_ok = checks["postgres"] == "ok"
    if postgres_ok:
        lag = probes.scheduler_lag()
        checks["scheduler"] = "ok" if lag <= settings.SCHEDULER_LAG_THRESHOLD_SECONDS else "lagging"
        body["scheduler_lag_seconds"] = round(lag, 3)
    else:
        checks["scheduler"] = "unknown"
    ready = all(value == "ok" for value in checks.values())
    body["status"] = "ready" if ready else "not_ready"
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
@require_GET
def deps(request: HttpRequest) -> JsonResponse:
    results = probes.run_all()
    dependencies: dict[str, dict[str, object]] = {
        r.name: {
            "status": r.status,
            "latency_ms": r.latency_ms,
            "version": r.version,
            **({"error": r.error} if r.error else {}),
        }
        for r in results
    }
    age = heartbeat.age_seconds()
    dependencies["celery"] = {
        "status": "ok" if age is not None and age < 60 else "stale",
        "last_heartbeat_age_s": age,
    }
    ready = all(r.ok for r in results)
    return JsonResponse(
        {
            "status": "ok" if ready else "degraded",
            "uptime": format_uptime(time.monotonic() - _STARTED),
            "uptime_seconds": int(time.monotonic() - _STARTED),
            "checked_at": timezone.now().isoformat(),
            "dependencies": dependencies,
        },
        status=200,
    )
