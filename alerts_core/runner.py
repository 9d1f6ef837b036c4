"""The in-process runner: many monitors, one scheduler thread, a bounded pool of workers.

* One scheduler thread keeps a heap of due times and hands due monitors to the pool; it sleeps
  until the earliest one, so its cost does not grow with idle monitors.
* ``workers`` threads run checks. A monitor is never run twice at once, and its alert is only
  ever called from the job that ran its check, so alerts for one monitor are never concurrent.
* Every check gets a context with the monitor's timeout as deadline. A check that is still
  running past its deadline is abandoned: its context is cancelled, the evaluation completes as
  failed with :class:`~alerts_core.context.DeadlineExceeded`, the monitor is rescheduled and a
  fresh worker replaces the stuck one, so a hanging check never stalls the others. The stuck
  thread exits when the check finally returns; its result is discarded.
* Runs are fixed-rate: the next due time is the previous due time plus the interval, so
  scheduling does not drift; a monitor that overran skips to now rather than bursting.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alerts_core.check import CheckFailed, call_alert, run_check
from alerts_core.context import Context, DeadlineExceeded, background
from alerts_core.monitor import Monitor
from alerts_core.state import Event, EventKind, MonitorState, Outcome, transition

logger = logging.getLogger("alerts_core.runner")

_PROBLEMS = frozenset({EventKind.FIRED, EventKind.REPEATED, EventKind.WARNING_RAISED})


@dataclass(eq=False)
class _Entry:
    monitor: Monitor
    state: MonitorState = field(default_factory=MonitorState)
    running: bool = False
    removed: bool = False
    replacement: Monitor | None = None
    generation: int = 0


@dataclass(eq=False)
class _Job:
    entry: _Entry
    generation: int
    due: float
    ctx: Context | None = None
    finished: bool = False
    abandoned: bool = False


class Runner:
    """Runs monitors on their intervals until stopped.

    >>> runner = Runner(workers=4)
    >>> runner.add(monitor)        # doctest: +SKIP
    >>> runner.start()             # doctest: +SKIP
    >>> runner.stop()              # doctest: +SKIP

    ``on_lag`` (for measurements) receives, for every run, how late it started in seconds.
    """

    def __init__(
        self,
        *,
        workers: int = 8,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("need at least one worker")
        self._size = workers
        self._clock = clock
        self._now = now
        self._on_lag = on_lag
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, _Job]] = []
        # checks in progress and their deadlines: at most one per worker, so scanning is cheap
        self._running: dict[_Job, float] = {}
        self._sleep_until = float("inf")
        self._seq = itertools.count()
        self._entries: dict[str, _Entry] = {}
        self._queue: queue.SimpleQueue[_Job | tuple[_Job, Outcome] | None] = queue.SimpleQueue()
        self._threads: set[threading.Thread] = set()
        self._scheduler: threading.Thread | None = None
        self._ctx, self._cancel = background().with_cancel()
        self._stopping = False
        self.abandoned_checks = 0

    # ------------------------------------------------------------------ managing monitors

    def add(self, monitor: Monitor, *, delay: float = 0.0) -> None:
        """Adds a monitor; its first check runs after ``delay`` seconds. A name already in
        use is an error (use :meth:`replace`)."""
        with self._lock:
            entry = self._entries.get(monitor.name)
            if entry is not None and not entry.removed:
                raise ValueError(f"a monitor named {monitor.name!r} is already running")
            if entry is not None:  # removed while its last check is still running
                entry.removed = False
                entry.replacement = monitor
                entry.state = MonitorState()
                return
            entry = _Entry(monitor)
            self._entries[monitor.name] = entry
            self._schedule(entry, self._clock() + delay)

    def replace(self, monitor: Monitor) -> None:
        """Replaces the monitor of the same name (or adds it), keeping its alert state. A
        check already running finishes first; the replacement runs at once after it."""
        with self._lock:
            entry = self._entries.get(monitor.name)
            if entry is None or entry.removed:
                pass
            elif entry.running:
                entry.replacement = monitor
                return
            else:
                entry.monitor = monitor
                entry.generation += 1  # drops the old heap entry
                self._schedule(entry, self._clock())
                return
        self.add(monitor)

    def remove(self, name: str) -> bool:
        """Stops running the named monitor (a check in progress is allowed to finish, without
        alerting). Returns False if there was no such monitor."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry.removed:
                return False
            entry.generation += 1
            entry.replacement = None
            if entry.running:
                entry.removed = True
            else:
                del self._entries[name]
            return True

    def names(self) -> list[str]:
        with self._lock:
            return sorted(n for n, e in self._entries.items() if not e.removed)

    def state(self, name: str) -> MonitorState:
        """The named monitor's current alert state."""
        with self._lock:
            return self._entries[name].state

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._lock:
            if self._scheduler is not None:
                raise RuntimeError("the runner is already started")
            self._scheduler = threading.Thread(
                target=self._schedule_loop, name="alerts-scheduler", daemon=True
            )
            for _ in range(self._size):
                self._spawn_worker()
        self._scheduler.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stops scheduling, cancels the context of running checks and waits up to
        ``timeout`` seconds for threads to end. Returns True if they all did; threads of checks
        that ignore their context are daemons and will not keep the process alive."""
        with self._lock:
            self._stopping = True
            self._wakeup.notify_all()
            threads = set(self._threads)
        self._cancel()
        for _ in threads:
            self._queue.put(None)
        limit = time.monotonic() + timeout
        for thread in [*threads, self._scheduler]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, limit - time.monotonic()))
        return not any(t.is_alive() for t in threads) and not (
            self._scheduler is not None and self._scheduler.is_alive()
        )

    def __enter__(self) -> Runner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scheduler thread

    def _schedule(self, entry: _Entry, when: float) -> None:
        """Pushes a run (lock held); wakes the scheduler only if it must run earlier."""
        item = (when, next(self._seq), _Job(entry, entry.generation, when))
        heapq.heappush(self._heap, item)
        if when < self._sleep_until:
            self._wakeup.notify()

    def _schedule_loop(self) -> None:
        heap, running = self._heap, self._running
        while True:
            with self._wakeup:
                while not self._stopping:
                    wake = heap[0][0] if heap else float("inf")
                    if running:
                        wake = min(wake, min(running.values()))
                    wait = wake - self._clock()
                    if wait <= 0:
                        break
                    self._sleep_until = wake
                    self._wakeup.wait(None if wake == float("inf") else wait)
                self._sleep_until = float("-inf")  # awake: nobody needs to notify
                if self._stopping:
                    return
                now = self._clock()
                if running:
                    for job in [j for j, deadline in running.items() if deadline <= now]:
                        self._expire(job)
                runs: list[_Job] = []
                while heap and heap[0][0] <= now:
                    job = heapq.heappop(heap)[2]
                    entry = job.entry
                    if job.generation != entry.generation or entry.removed or entry.running:
                        continue
                    entry.running = True
                    runs.append(job)
            for job in runs:
                self._queue.put(job)

    def _expire(self, job: _Job) -> None:
        """A check is past its deadline (lock held): abandon it and replace its worker."""
        del self._running[job]
        if job.finished or job.abandoned:
            return
        job.abandoned = True
        self.abandoned_checks += 1
        if job.ctx is not None:
            job.ctx.cancel()
        self._spawn_worker()
        self._queue.put((job, Outcome.failed(error=DeadlineExceeded())))

    # ------------------------------------------------------------------ workers

    def _spawn_worker(self) -> None:
        thread = threading.Thread(target=self._work_loop, name="alerts-worker", daemon=True)
        self._threads.add(thread)
        thread.start()

    def _work_loop(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None or self._stopping:
                    return
                if isinstance(item, tuple):  # an abandoned check's completion
                    self._complete(*item)
                elif not self._run(item):
                    return  # this worker's check was abandoned; a fresh worker took its place
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _run(self, job: _Job) -> bool:
        monitor = job.entry.monitor
        started = self._clock()
        if self._on_lag is not None:
            self._on_lag(started - job.due)
        ctx, cancel = self._ctx.with_timeout(monitor.timeout.total_seconds())
        deadline = ctx.deadline
        assert deadline is not None
        with self._lock:
            job.ctx = ctx
            self._running[job] = deadline
            if deadline < self._sleep_until:
                self._wakeup.notify()
        outcome = run_check(monitor.check, ctx)
        cancel()
        with self._lock:
            if job.abandoned:
                return False
            job.finished = True
            del self._running[job]
        self._complete(job, outcome)
        return True

    def _complete(self, job: _Job, outcome: Outcome) -> None:
        entry = job.entry
        monitor = entry.monitor
        with self._lock:
            current = job.generation == entry.generation and not entry.removed
            state = entry.state
        events: list[Event] = []
        if current:
            state, events = transition(state, outcome, monitor.policy, self._now())
            for event in events:
                self._deliver(monitor, event)
        with self._lock:
            entry.running = False
            if current:
                entry.state = state
            if entry.removed:
                if self._entries.get(monitor.name) is entry:
                    del self._entries[monitor.name]
                return
            if entry.replacement is not None:
                entry.monitor, entry.replacement = entry.replacement, None
                entry.generation += 1
                self._schedule(entry, self._clock())
                return
            if not current:
                return
            wait = monitor.interval(state.failures).total_seconds()
            now = self._clock()
            due = job.due + wait
            self._schedule(entry, due if due > now else now)

    def _deliver(self, monitor: Monitor, event: Event) -> None:
        if monitor.on_event is not None:
            try:
                monitor.on_event(event)
            except Exception:
                logger.exception("on_event of monitor %r raised; ignored", monitor.name)
        if event.notifies and event.kind in _PROBLEMS:
            error = event.error or CheckFailed(event.message or f"{monitor.name} failed")
            call_alert(monitor.alert, self._ctx, error)
