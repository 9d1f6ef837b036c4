"""CPU per 1,000 evaluations in the worker's process with operations off and on, without a
broker: what bench_observability.py's "worker CPU per 1,000 evaluations" measures, less noisy,
and profiled.

Each mode runs in a fresh process that sets tracing up as a Celery pool process does
(observability.tracing.init at ``worker_process_init``) and runs the ``evaluate_monitors`` task
through Celery's own tracer (``Task.apply``: the task_prerun/postrun signals the Celery
instrumentation and the log context hang on fire as in a worker), one task per batch of
EVALUATION_BATCH_SIZE monitors, TICKS ticks after a warm-up tick, timing
``time.process_time`` around the loop (every thread: the span exporter's included). Modes:

- ``off``: plain logs, no tracing (the default);
- ``logs``: JSON logs only;
- ``out``: tracing on, every batch sampled out (ratio 0: what nine batches in ten pay at 10 %);
- ``in``: tracing on, every batch sampled (ratio 1: what the tenth pays);
- ``traces``: tracing at 10 %; ``both``: JSON logs and tracing at 10 % (the production setting).

    .venv/bin/python bench/profile_observability_batch.py [--monitors=3000] [--ticks=5]
        [--rounds=5] [--settle=25] [--modes=off,out,in,both] [--profile=off,out]

A mode may name another source tree, as in profile_observability_request.py
(``--modes=both,both@/tmp/before``). ``--profile=A,B`` writes a cProfile of each mode's loop
(an extra first round, not counted) and prints what B calls more often, or longer, than A.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATIOS = {"out": "0", "in": "1", "traces": "0.1", "both": "0.1"}


def option(name: str, default: str) -> str:
    prefix = f"--{name}="
    return next((a[len(prefix) :] for a in sys.argv[1:] if a.startswith(prefix)), default)


def child(ids_path: str, ticks: int, profile_path: str) -> None:
    """In the mode's process: ``ticks`` ticks of every monitor, one task per batch."""
    import time

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import common

    common.setup_django()
    from django.conf import settings
    from django.utils import timezone

    from monitors.tasks import evaluate_monitors
    from observability import tracing

    tracing.init(service="growalert-worker", ratio=settings.TRACING_SAMPLE_RATIO)
    with open(ids_path) as f:
        ids = json.load(f)
    size = settings.EVALUATION_BATCH_SIZE
    applied = 0

    def tick() -> None:
        nonlocal applied
        due = timezone.now().isoformat()
        for start in range(0, len(ids), size):
            result = evaluate_monitors.apply(
                args=([(pk, due) for pk in ids[start : start + size]],)
            )
            applied += int(result.get())

    tick()  # warm-up: connections, resident monitors, first imports
    applied = 0
    profile = None
    if profile_path:
        import cProfile

        profile = cProfile.Profile(time.process_time)  # CPU, not waits
        profile.enable()
    started = time.process_time()
    for _ in range(ticks):
        time.sleep(0.01)  # the next tick is due later than this one
        tick()
    cpu = time.process_time() - started
    if profile is not None:
        profile.disable()
        profile.dump_stats(profile_path)
    tracing.flush()
    evaluations = len(ids) * ticks
    print(json.dumps({"ms_per_1000": cpu * 1e6 / evaluations, "applied": applied}))


def profile_path(mode: str) -> str:
    name = mode.replace("@", "-").replace("/", "_")
    return os.path.join(ROOT, ".local", "log", f"observability-batch-{name}.prof")


def mode_env(mode: str, endpoint: str) -> dict[str, str]:
    import common

    drop = ("LOG_FORMAT", "SENTRY_DSN", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if mode in ("logs", "both"):
        env["LOG_FORMAT"] = "json"
    if mode in RATIOS:
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": RATIOS[mode]}
    # As a deployed worker: DEBUG off (no query log), loopback sources allowed (the bench's).
    return common.production_env(env, SOURCES_ALLOW_PRIVATE_ADDRESSES="true")


def settle(ids: list[int], ticks: str) -> None:
    """Evaluates the fresh monitors ``ticks`` times here first: a new monitor with flap
    detection writes its whole row at each of its first ~20 checks (its history grows), so
    the first ticks cost several times a steady one and whichever mode ran them would look
    dearer (monitors/evaluate/resident.py)."""
    import time

    from django.utils import timezone

    from monitors.evaluate import pipeline

    for _ in range(int(ticks)):
        pipeline.evaluate_batch([(pk, timezone.now()) for pk in ids])
        time.sleep(0.01)


def main() -> None:
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import bench_pipeline  # sets Django up; seed_influx(), seed_monitors()

    from monitors.models import Monitor
    from tests.observability.receivers import OtlpReceiver

    monitors = int(option("monitors", "3000"))
    ticks = int(option("ticks", "5"))
    rounds = int(option("rounds", "5"))
    modes = option("modes", "off,out,in,both").split(",")
    profiled = [m for m in option("profile", "").split(",") if m]
    bench_pipeline.seed_steady_influx(minutes=90)
    _, ids = bench_pipeline.seed_monitors(monitors)
    ids_path = os.path.join(ROOT, ".local", "log", "observability-batch-ids.json")
    with open(ids_path, "w") as f:
        json.dump(ids, f)
    settle(ids, option("settle", "25"))
    otlp = OtlpReceiver()
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    print(f"{monitors:,} monitors x {ticks} ticks a round, {rounds} rounds; load {os.getloadavg()}")
    # Round 0, when asked: the profiled modes under cProfile, not counted (it slows them).
    for i in range(0 if profiled else 1, rounds + 1):
        order = modes if i % 2 == 1 else list(reversed(modes))
        for mode in order if i else [m for m in modes if m in profiled]:
            path = "" if i else profile_path(mode)
            setting, _, tree = mode.partition("@")
            with open(os.path.join(ROOT, ".local", "log", "observability-batch.log"), "ab") as log:
                out = subprocess.run(
                    [
                        sys.executable,
                        os.path.join(tree or ROOT, "bench", os.path.basename(__file__)),
                        "--child",
                        ids_path,
                        str(ticks),
                        path,
                    ],
                    env=mode_env(setting, otlp.endpoint),
                    cwd=tree or ROOT,
                    stdout=subprocess.PIPE,
                    stderr=log,  # the mode's log lines, JSON or plain: written, as a worker's
                    text=True,
                    check=True,
                ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            if result["applied"] != monitors * ticks:
                raise SystemExit(f"{mode}: applied {result['applied']} of {monitors * ticks}")
            if not i:
                continue
            cpu[mode].append(result["ms_per_1000"])
            print(
                f"  round {i} {mode:<8}: {cpu[mode][-1]:,.1f} ms CPU per 1,000 evaluations,"
                f" load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    base = statistics.median(cpu[modes[0]])
    for mode in modes:
        median = statistics.median(cpu[mode])
        low, high = min(cpu[mode]), max(cpu[mode])
        print(
            f"{mode:<8} median {median:,.1f} ms per 1,000 ({median / base:.3f} x {modes[0]};"
            f" rounds {low:,.1f}-{high:,.1f})"
        )
    print(f"spans received: {len(otlp.spans):,}")
    otlp.close()
    Monitor.objects.filter(pk__in=ids).delete()
    if len(profiled) >= 1:
        print_profiles(profiled, monitors * ticks / 1000)


def print_profiles(modes: list[str], thousands: float) -> None:
    """Function calls per 1,000 evaluations of each mode profiled (a figure the machine's load
    does not move); for one mode its top entries, for two what the second does more."""
    import pstats

    for mode in modes:
        calls = pstats.Stats(profile_path(mode)).total_calls / thousands  # type: ignore[attr-defined]
        print(f"{mode}: {calls:,.0f} function calls per 1,000 evaluations")
    if len(modes) == 1:
        stats = pstats.Stats(profile_path(modes[0]))
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        return
    base, other = (pstats.Stats(profile_path(m)).stats for m in modes[:2])  # type: ignore[attr-defined]
    rows = []
    for key, (_, calls, tottime, _, _) in other.items():
        _, calls0, tottime0, _, _ = base.get(key, (0, 0, 0.0, 0, {}))
        rows.append((tottime - tottime0, calls - calls0, key))
    rows.sort(reverse=True)
    print(f"{'own s more':>10} {'calls more':>10}  function ({modes[1]} vs {modes[0]})")
    for more, calls, (path, line, name) in rows[:50]:
        print(f"{more:>10.3f} {calls:>10,}  {path.split('site-packages/')[-1]}:{line}({name})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
    else:
        try:
            main()
        finally:
            from tests import customer_influx

            customer_influx.stop()
