"""The arrival evaluator's own CPU per reading, alone: no web server, no flusher, no load from the
devices. Seeds N flip monitors (bench_flip_arrival's), puts SECONDS seconds of readings (one
``sensor_value,device=dI value=20`` per device per second, in entries of 100 lines as the
gateways of bench_flip_arrival send them) straight into the ingest stream, then drains it with
one in-process evaluator, BATCH entries per read (a live evaluator that keeps up reads a few
entries at a time), a second of readings per second of wall clock, and prints the process CPU
per 1,000 readings after a warm-up second. ``--profile`` prints cProfile's top functions too.
The entries it added are deleted at the end (no flusher writes them).

    .venv/bin/python bench/profile_arrival.py [N] [--seconds S] [--batch B] [--flip F] [--profile]
        [--unpaced]

``--flip F``: every F-th second, 1 % of the devices read 35 (fired, then resolved the next
second): the cost of a round's transitions and their commits."""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import time
from datetime import timedelta

import common  # bench/common.py: this directory is first on sys.path

os.environ["PYTHONPATH"] = str(common.ROOT)
common.setup_django()

from django.contrib.auth import get_user_model
from django.db import connection

from devices import hosted
from devices.arrival.evaluator import ArrivalEvaluator, FullCollections
from devices.ingest import queue
from monitors.models import Monitor

USER = "bench-profile-arrival"
GROUP = 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("devices", nargs="?", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--flip", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--unpaced",
        action="store_true",
        help="drain as fast as it goes (default: a second of readings per second of wall "
        "clock, so the rows refreshed every 30 s cost what they cost live)",
    )
    args = parser.parse_args()
    owner, channel = common.webhook_channel(USER, "http://127.0.0.1:9/unused")
    Monitor.objects.filter(owner=owner).delete()
    source = hosted.hosted_source(owner_id=owner.pk)
    monitors = common.flip_monitors(owner, source, channel, args.devices, timedelta(seconds=10))
    conn = queue.client()
    evaluator = ArrivalEvaluator(consumer=f"profile-{os.getpid()}", batch=args.batch)
    evaluator.evaluate_once()  # leads, loads the watched monitors, starts its windows
    evaluator._refresh()
    added: list[bytes] = []
    try:
        start_s = time.time() + 5  # decided from the first reading (windows start now)
        pipe = conn.pipeline(transaction=False)
        for second in range(args.seconds + 1):
            stamp = int((start_s + second) * 1e9)
            flipped = args.flip and second % args.flip == 1
            for first in range(0, args.devices, GROUP):
                body = "\n".join(
                    f"sensor_value,device=d{d} value="
                    f"{35.0 if flipped and d % 100 == 0 else 20.0} {stamp}"
                    for d in range(first, min(first + GROUP, args.devices))
                )
                pipe.xadd(
                    queue.STREAM,
                    {"db": source.database, "dev": 0, "lines": body, "status": "{}"},
                )
        added = list(pipe.execute())
        warm = args.devices // GROUP  # the first second: rows loaded, windows started
        readings = evaluations = 0
        while warm > 0:
            done = evaluator.evaluate_once()
            evaluator.settle()  # as the live loop does after a read that loaded monitors
            warm -= done.entries
        pauses = FullCollections()
        gc.callbacks.append(pauses.observe)
        profile = cProfile.Profile() if args.profile else None
        cpu0, wall0 = time.process_time(), time.time()
        if profile:
            profile.enable()
        rounds = written = entries = 0
        per_second = (args.devices + GROUP - 1) // GROUP
        while True:
            done = evaluator.evaluate_once()
            evaluator.settle()
            if not done.entries:
                break
            entries += done.entries
            if not args.unpaced:
                time.sleep(max(0.0, wall0 + entries / per_second - time.time()))
            rounds += 1
            readings += done.readings
            evaluations += done.evaluations
            written += done.written
        if profile:
            profile.disable()
        cpu, wall = time.process_time() - cpu0, time.time() - wall0
        print(
            f"profile_arrival N={args.devices:,} batch {args.batch}: {readings:,} readings, "
            f"{evaluations:,} evaluations, {written:,} rows written in {rounds} reads; "
            f"CPU {cpu * 1000:.0f} ms = {cpu / max(readings, 1) * 1e6:.1f} ms per 1,000 "
            f"readings (wall {wall:.1f} s); full collections {pauses.line()}"
        )
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    finally:
        evaluator.close()
        if added:
            conn.xdel(queue.STREAM, *added)
        Monitor.objects.filter(pk__in=[m.pk for m in monitors]).delete()
        get_user_model().objects.filter(username=USER).delete()
        connection.close()


if __name__ == "__main__":
    main()
