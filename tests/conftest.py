"""Suite-wide fixtures: the real local services are started once (idempotently) per run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests import customer_influx

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "scripts" / "services.sh"


def services(action: str, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVICES), action, *names], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="session", autouse=True)
def _local_services() -> None:
    result = services("up")
    assert result.returncode == 0, result.stderr


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    """Login failures (django-axes) and API rate counters live in Redis and outlive a test
    (and a test run, whose user ids start again at 1): each test starts with none. The URL is
    read before the test, which may point REDIS_URL at a dead port."""
    from django.conf import settings

    url = settings.REDIS_URL
    yield
    import redis

    client = redis.Redis.from_url(url)
    for pattern in ("*axes*", "growalert:throttle:*", "*live:*", "*growalert:escalation-wake:*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Django's default hasher takes ~0.3 s a password by design; the factories set one for
    every user they make. The suite hashes with MD5 (only ever for test users)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _customer_influx_stopped_at_the_end() -> Iterator[None]:
    yield
    customer_influx.stop()


@pytest.fixture(scope="session")
def customer_influx_url() -> str:
    """The customers' InfluxDB (a second influxd; the deployment's own is never a source)."""
    return customer_influx.url()


@pytest.fixture(autouse=True)
def _sources_on_loopback(settings: Any) -> None:
    """Test sources live on loopback (the customer influxd, fakes): allow private addresses.
    The deployment's own InfluxDB stays refused, as in production."""
    settings.SOURCES_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def stopped_service() -> Iterator[list[str]]:
    """Stops the services a test names (append to the list); starts them again afterwards."""
    stopped: list[str] = []
    yield stopped
    if stopped:
        result = services("up", *stopped)
        assert result.returncode == 0, result.stderr


def start_celery_worker(
    name: str,
    *,
    beat: bool = False,
    pool: str = "solo",
    concurrency: int = 1,
    queues: str = "",
    **env: str,
) -> tuple[subprocess.Popen[str], IO[str]]:
    """Starts a real Celery worker (solo pool unless ``pool``; every queue unless ``queues``,
    comma-separated) on the local Redis; ``env`` overrides settings (e.g. DATABASE_URL for the
    test database, CELERY_QUEUE for one private queue, CELERY_EVALUATION_QUEUE and
    CELERY_DELIVERY_QUEUE for two)."""
    import os

    log = open(ROOT / ".local" / "log" / f"test-celery-{name}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "growalert",
            "worker",
            "--pool",
            pool,
            *(["--concurrency", str(concurrency)] if pool != "solo" else []),
            *(["--queues", queues] if queues else []),
            "--loglevel",
            "INFO",
            "--hostname",
            f"{name}-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
            *(
                ["--beat", "--schedule", str(ROOT / ".local" / f"celerybeat-{name}")]
                if beat
                else []
            ),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "DJANGO_DEBUG": "true",
            "SOURCES_ALLOW_PRIVATE_ADDRESSES": "true",  # the customer influxd is on loopback
            **env,
        },
    )
    return process, log


def start_web_server(
    port: int,
    env: dict[str, str],
    *,
    out: IO[bytes] | int = subprocess.DEVNULL,
    threads: int = 4,
    access_log: bool = False,
) -> subprocess.Popen[bytes]:
    """The real web server as scripts/run_all.sh starts it (``python -m growalert.serve``:
    granian serving growalert.wsgi), one worker, on 127.0.0.1:``port`` with ``env`` as its
    whole environment; its output (start-up lines, access log) to ``out``."""
    return subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "growalert.serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--threads",
            str(threads),
            *(["--access-log"] if access_log else []),
        ],
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )


def stop_celery_worker(process: subprocess.Popen[str], log: IO[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="session")
def celery_worker_process() -> Iterator[subprocess.Popen[str]]:
    """A real Celery worker on the default queue, for end-to-end task tests."""
    process, log = start_celery_worker("worker")
    yield process
    stop_celery_worker(process, log)
