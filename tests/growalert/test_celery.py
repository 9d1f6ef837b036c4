from __future__ import annotations

import subprocess
import time

from growalert.celery import app
from growalert.health import heartbeat
from growalert.tasks import record_heartbeat


def test_beat_schedule_holds_only_the_fixed_project_tasks() -> None:
    app.loader.import_default_modules()  # what a worker does at start-up
    schedule = app.conf.beat_schedule

    assert "record-heartbeat" in schedule
    for entry in schedule.values():
        assert entry["task"] in app.tasks, f"{entry['task']} is scheduled but not registered"


def test_tasks_are_acknowledged_late_and_time_limited() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.worker_prefetch_multiplier == 1


def test_a_real_worker_runs_the_heartbeat_task(
    celery_worker_process: subprocess.Popen[str],
) -> None:
    heartbeat._client().delete(heartbeat.KEY)

    record_heartbeat.delay()

    deadline = time.monotonic() + 30
    while heartbeat.age_seconds() is None and time.monotonic() < deadline:
        assert celery_worker_process.poll() is None, "the worker exited"
        time.sleep(0.2)
    age = heartbeat.age_seconds()
    assert age is not None
    assert age < 30


def test_a_settings_module_that_star_imports_the_projects_loads(tmp_path) -> None:
    """An operator's overlay (``from growalert.settings import *``) imports the growalert
    package, and so the Celery app, while the overlay itself is half loaded: the app must not
    read settings at import time (its routes are read when a task is sent)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "overlay_settings.py").write_text(
        "from growalert.settings import *  # noqa: F403\nOVERLAY_MARK = 'loaded'\n"
    )
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from growalert.celery import app\n"
        "route = app.amqp.router.route({}, 'monitors.notify.tasks.deliver_notification')\n"
        "print(settings.OVERLAY_MARK, route['queue'].name)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{root}",
        "DJANGO_SETTINGS_MODULE": "overlay_settings",
        "DJANGO_DEBUG": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["loaded", "delivery"]
