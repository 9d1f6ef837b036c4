"""gunicorn configuration for ``bench_ingest_cpu.py --gunicorn --profile``: the project's own
``gunicorn.conf.py`` plus a CPU-time profile of every request a gthread worker handles.

Each worker thread profiles the requests it handles (cProfile timed with
``time.thread_time``: a thread waiting for Redis or for the GIL is not counted as working);
when the worker exits, its threads' profiles are merged and written to
``$BENCH_PROFILE_DIR/worker-<pid>.prof``. Only for benches: profiling slows every call.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import runpy
import threading
import time
from pathlib import Path
from typing import Any

_project = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
child_exit = _project["child_exit"]
post_fork = _project["post_fork"]
logger_class = _project["logger_class"]

_profiles: list[cProfile.Profile] = []
_local = threading.local()


def post_worker_init(worker: Any) -> None:
    from gunicorn.workers import gthread  # type: ignore[import-untyped]

    handle = gthread.ThreadWorker.handle

    def profiled(self: Any, conn: Any) -> Any:
        profile = getattr(_local, "profile", None)
        if profile is None:
            profile = _local.profile = cProfile.Profile(time.thread_time)
            _profiles.append(profile)
        return profile.runcall(handle, self, conn)

    gthread.ThreadWorker.handle = profiled


def worker_exit(server: Any, worker: Any) -> None:
    if not _profiles:
        return
    stats = pstats.Stats(_profiles[0])
    for profile in _profiles[1:]:
        stats.add(profile)
    stats.dump_stats(str(Path(os.environ["BENCH_PROFILE_DIR"]) / f"worker-{os.getpid()}.prof"))
