"""The in-process runner, with real threads and real (short) intervals."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from alerts_core import (
    Context,
    DeadlineExceeded,
    EventKind,
    Monitor,
    Policy,
    Runner,
    Status,
    fixed,
)

FAST = fixed(timedelta(milliseconds=20))


def wait_until(predicate, timeout=5.0):
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if predicate():
            return True
        time.sleep(0.005)
    return False


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.alerts: list[tuple[BaseException, ...]] = []
        self.events: list[EventKind] = []
        self.active = 0
        self.overlaps = 0

    def alert(self, ctx: Context, *errors: BaseException) -> None:
        with self.lock:
            self.active += 1
            if self.active > 1:
                self.overlaps += 1
        time.sleep(0.01)  # long enough for an overlap to show
        with self.lock:
            self.alerts.append(errors)
            self.active -= 1

    def on_event(self, event) -> None:
        with self.lock:
            self.events.append(event.kind)


def test_a_failing_check_fires_once_then_resolves():
    healthy = threading.Event()
    rec = Recorder()

    def check(ctx):
        return (True, None) if healthy.is_set() else (False, RuntimeError("down"))

    runner = Runner(workers=2)
    runner.add(
        Monitor(
            "api",
            check,
            rec.alert,
            FAST,
            Policy(pending_for=2, flap_detection=False),
            on_event=rec.on_event,
        )
    )
    with runner:
        assert wait_until(lambda: runner.state("api").status is Status.FIRING)
        time.sleep(0.1)
        healthy.set()
        assert wait_until(lambda: runner.state("api").status is Status.OK)
    assert rec.events == [EventKind.FIRED, EventKind.RESOLVED]
    assert len(rec.alerts) == 1
    assert str(rec.alerts[0][0]) == "down"


def test_a_raising_check_fails_with_its_exception_and_a_raising_alert_is_contained():
    calls = []

    def check(ctx):
        raise ValueError("boom")

    def alert(ctx, *errors):
        calls.append(errors)
        raise RuntimeError("alerts cannot fail")

    runner = Runner(workers=1)
    runner.add(Monitor("m", check, alert, FAST, Policy(flap_detection=False)))
    with runner:
        assert wait_until(lambda: calls)
        time.sleep(0.1)
        assert runner.state("m").status is Status.FIRING  # the runner kept going
    assert isinstance(calls[0][0], ValueError)


def test_a_hanging_check_is_abandoned_at_its_deadline_and_does_not_stall_others():
    release = threading.Event()
    counts = {"fast": 0}

    def hang(ctx):
        release.wait(10)
        return True, None

    def fast(ctx):
        counts["fast"] += 1
        return True, None

    rec = Recorder()
    runner = Runner(workers=1)  # one worker: only the abandonment can free it
    runner.add(
        Monitor(
            "hang",
            hang,
            rec.alert,
            FAST,
            Policy(flap_detection=False),
            timeout=timedelta(milliseconds=100),
        )
    )
    runner.add(Monitor("fast", fast, rec.alert, FAST))
    try:
        runner.start()
        assert wait_until(lambda: runner.state("hang").status is Status.FIRING)
        before = counts["fast"]
        assert wait_until(lambda: counts["fast"] > before + 5)
        assert isinstance(rec.alerts[0][0], DeadlineExceeded)
        assert runner.abandoned_checks >= 1
    finally:
        release.set()
        assert runner.stop(timeout=5)


def test_a_check_that_honours_its_context_ends_when_the_runner_stops():
    started = threading.Event()

    def patient(ctx):
        started.set()
        ctx.wait()
        return False, ctx.err()

    runner = Runner(workers=2)
    runner.add(Monitor("slow", patient, lambda ctx, *e: None, FAST, timeout=timedelta(minutes=5)))
    runner.start()
    assert started.wait(5)
    began = time.monotonic()
    assert runner.stop(timeout=5)
    assert time.monotonic() - began < 1


def test_monitors_can_be_added_replaced_and_removed_while_running():
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def counting(name):
        def check(ctx):
            with lock:
                seen[name] = seen.get(name, 0) + 1
            return True, None

        return check

    runner = Runner(workers=4)
    with runner:
        for i in range(50):
            runner.add(Monitor(f"m{i}", counting(f"m{i}"), lambda ctx, *e: None, FAST))
        assert wait_until(lambda: len(seen) == 50)
        runner.replace(Monitor("m0", counting("m0-new"), lambda ctx, *e: None, FAST))
        assert wait_until(lambda: seen.get("m0-new", 0) > 2)
        for i in range(1, 50):
            assert runner.remove(f"m{i}")
        time.sleep(0.1)  # checks already running may finish
        with lock:
            frozen = {k: v for k, v in seen.items() if k not in ("m0", "m0-new")}
        time.sleep(0.2)
        with lock:
            assert {k: v for k, v in seen.items() if k not in ("m0", "m0-new")} == frozen
        assert runner.names() == ["m0"]
        assert not runner.remove("m7")


def test_alerts_for_one_monitor_are_never_concurrent():
    rec = Recorder()
    policy = Policy(repeat_every=timedelta(milliseconds=1), flap_detection=False)
    runner = Runner(workers=8)
    runner.add(
        Monitor("m", lambda ctx: (False, None), rec.alert, fixed(timedelta(milliseconds=1)), policy)
    )
    with runner:
        assert wait_until(lambda: len(rec.alerts) >= 10)
    assert rec.overlaps == 0


def test_the_interval_is_fixed_rate_and_does_not_drift():
    starts: list[float] = []

    def check(ctx):
        starts.append(time.monotonic())
        time.sleep(0.01)  # the check's own duration must not push the schedule
        return True, None

    runner = Runner(workers=1)
    runner.add(Monitor("tick", check, lambda ctx, *e: None, fixed(timedelta(milliseconds=50))))
    with runner:
        assert wait_until(lambda: len(starts) >= 11)
    span = starts[10] - starts[0]
    assert 0.45 < span < 0.6, span
