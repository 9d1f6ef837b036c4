"""GET /healthz (liveness), GET /readyz (readiness), GET /health/deps (diagnostics)."""

from __future__ import annotations

import time

import redis
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from growalert.health import monitoring, operator, probes

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


# What the web tier cannot serve pages and the API without. Redis (Celery broker, the billing
# price cache) and InfluxDB (charts, evaluation) are reported but do not make it unready: taking
# every web process out of the load balancer would not bring them back, and monitoring being
# blind is its own signal (``monitoring`` here, /health/deps, growalert_monitoring_blind).
REQUIRED_FOR_WEB = ("postgres",)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = probes.run_all()
    checks: dict[str, str] = {r.name: r.status for r in results}
    ready = all(checks[name] == "ok" for name in REQUIRED_FOR_WEB)
    state = monitoring.assess(results)
    body: dict[str, object] = {
        "status": "ready" if ready else "not_ready",
        "checks": checks,
        "required": list(REQUIRED_FOR_WEB),
        "degraded": sorted(n for n, v in checks.items() if v != "ok" and n not in REQUIRED_FOR_WEB),
        "monitoring": {"blind": state.blind, "reasons": list(state.reasons)},
    }
    if state.scheduler_lag_seconds is not None:
        body["scheduler_lag_seconds"] = round(state.scheduler_lag_seconds, 3)
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
    state = monitoring.assess(results)
    age = state.heartbeat_age_seconds
    dependencies["celery"] = {
        "status": "ok" if "no_worker_heartbeat" not in state.reasons else "stale",
        "last_heartbeat_age_s": age,
    }
    all_ok = all(r.ok for r in results) and not state.blind
    return JsonResponse(
        {
            "status": "ok" if all_ok else "degraded",
            "uptime": format_uptime(time.monotonic() - _STARTED),
            "uptime_seconds": int(time.monotonic() - _STARTED),
            "checked_at": timezone.now().isoformat(),
            "dependencies": dependencies,
            "monitoring": {**state.as_json(), "episode": operator.episode_json()},
        },
        status=200,
    )


@never_cache
@require_GET
def status(request: HttpRequest) -> JsonResponse:
    """Public status: whether monitoring is in a blind episode, as the last beat check (every
    30 s) recorded it. Reads one Redis key and probes nothing, so it is cheap to poll."""
    try:
        episode = operator.load_episode()
    except redis.RedisError:
        return JsonResponse({"status": "unknown", "monitoring": None})
    if episode is None:
        return JsonResponse({"status": "operational", "monitoring": {"blind": False}})
    return JsonResponse(
        {
            "status": "monitoring_blind",
            "monitoring": {"blind": True, "since": episode.since, "reasons": episode.reasons},
        }
    )
