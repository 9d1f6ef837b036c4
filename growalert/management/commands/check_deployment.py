"""``manage.py check_deployment``: is everything growalert needs up? Postgres, Redis and InfluxDB
reachable, beat alive (the heartbeat a worker records for it), workers answering a ping, the
queues' depth, how late device readings are in the ingest stream for each of its readers (the
flusher), and which sources that should push were heard from. Exit status 1 when something is
wrong (usable from a deploy script)."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from devices.ingest import backlog, queue
from growalert.celery import app, declared_queues
from growalert.health import heartbeat, probes
from monitors.evaluate import arrival
from monitors.models import Source


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each queue (the Redis transport keeps one list per queue and
    priority step: ``name`` and ``name\\x06\\x16<n>``); None when Redis cannot be read."""
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    depths: dict[str, int | None] = {}
    try:
        for queue in declared_queues():
            keys = [queue.name, *(f"{queue.name}\x06\x16{step}" for step in range(1, 10))]
            depths[queue.name] = sum(int(client.llen(key)) for key in keys)
    except redis.RedisError:
        return {queue.name: None for queue in declared_queues()}
    finally:
        client.close()
    return depths


# A reader of the ingest stream this far behind is a problem (the flusher writes within a second).
INGEST_BEHIND_SECONDS = 30.0


def ping_workers(timeout: float) -> dict[str, Any]:
    """Workers that answered a broadcast ping within ``timeout`` (none when the broker is
    down)."""
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception:  # the broker is unreachable: no worker can be asked
        return {}
    return {name: answer for reply in replies for name, answer in reply.items()}


class Command(BaseCommand):
    help = "Check services, beat, workers and queues; exit 1 when something is wrong."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=2.0, help="worker ping (s)")

    def handle(self, *args: Any, **options: Any) -> None:
        problems: list[str] = []
        write = self.stdout.write
        for result in probes.run_all():
            detail = f"{result.version}" if result.ok else f"{result.error}"
            write(f"{result.name:<9} {result.status:<12} {result.latency_ms:>8.1f} ms  {detail}")
            if not result.ok:
                problems.append(f"{result.name} unreachable")
        age = heartbeat.age_seconds()
        stale = age is None or age > settings.MONITORING_HEARTBEAT_STALE_SECONDS
        write(f"beat      {'stale' if stale else 'ok':<12} last heartbeat {age} s ago")
        if stale:
            problems.append("no recent heartbeat: beat (or every worker) is down")
        timeout = max(0.1, min(options["timeout"], 30.0))
        workers = ping_workers(timeout)
        write(f"workers   {len(workers)} answered in {timeout:g} s: {', '.join(sorted(workers))}")
        if not workers:
            problems.append("no Celery worker answered the ping")
        for name, depth in queue_depths().items():
            write(f"queue     {name}: {'unknown' if depth is None else depth} waiting")
        problems += self.ingest_backlog()
        self.pushing_sources()
        if problems:
            for problem in problems:
                self.stderr.write(f"PROBLEM: {problem}")
            raise SystemExit(1)
        write("deployment ok")

    def pushing_sources(self) -> None:
        """How many sources whose InfluxDB should push (docs/arrival.md) were heard from: one
        that is silent has its monitors polled, so it is told, not a problem of the deployment
        (the customer's subscription may be gone)."""
        pushed = list(Source.objects.exclude(push_key_hash="").values_list("pk", flat=True))
        if not pushed:
            return
        heard = arrival.pushing(pushed)
        silent = sorted(set(pushed) - heard)
        shown = ", ".join(map(str, silent[:20])) + (" ..." if len(silent) > 20 else "")
        self.stdout.write(
            f"pushing   {len(heard)} of {len(pushed)} pushing sources heard from in the last "
            f"{arrival.PUSHING_TTL_MS // 1000} s" + (f"; silent: {shown}" if silent else "")
        )

    def ingest_backlog(self) -> list[str]:
        try:
            state = backlog.read(queue.client())
        except redis.RedisError as exc:
            self.stdout.write(f"ingest    unknown: {exc.__class__.__name__}")
            return []  # Redis' own probe above reports it
        self.stdout.write(f"ingest    {state.entries} batches in the stream")
        problems = []
        for lag in state.groups:
            self.stdout.write(
                f"ingest    {lag.group}: oldest unacknowledged {lag.oldest_age_seconds:.1f} s ago, "
                f"{lag.pending} read and pending"
            )
            if lag.oldest_age_seconds > INGEST_BEHIND_SECONDS:
                problems.append(
                    f"ingest {lag.group} {lag.oldest_age_seconds:.0f} s behind "
                    "(is manage.py ingest_flusher running? is InfluxDB accepting writes?)"
                )
        return problems
