"""Arrival times for readings without a timestamp (devices/ingest/stamps.py) are never given
twice: not by two threads of one process, not by two processes on different lanes, and a
forked web worker takes its own lane. Two readings of one device stamped alike would be one
point in InfluxDB (bench_ingest.py's single readings lost 1 of 38,961 that way)."""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
from multiprocessing.connection import Connection

from devices.ingest import stamps


def times(blocks: int, seed: int) -> list[int]:
    """Every arrival time of ``blocks`` requests of 1-5 rows."""
    rng = random.Random(seed)
    out: list[int] = []
    for _ in range(blocks):
        rows = rng.randint(1, 5)
        start = stamps.block(rows)
        out.extend(start + i * stamps.STEP for i in range(rows))
    return out


def test_threads_of_one_process_never_get_the_same_time() -> None:
    found: list[list[int]] = [[] for _ in range(8)]
    threads = [
        threading.Thread(target=lambda i=i: found[i].extend(times(5_000, i))) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [t for part in found for t in part]
    assert len(set(every)) == len(every)
    assert {t % stamps.STEP for t in every} == {os.getpid() % stamps.STEP}


def test_times_follow_the_clock() -> None:
    before = time.time_ns()
    start = stamps.block(3)
    assert before - stamps.STEP <= start <= time.time_ns() + 3 * stamps.STEP
    assert stamps.block(1) >= start + 3 * stamps.STEP  # the next one after the block


def _child(lane: int | None, out: Connection) -> None:
    own_lane = stamps._lane
    if lane is not None:
        stamps._lane = lane
    out.send((os.getpid(), own_lane, times(20_000, lane or 0)))
    out.close()


def run_children(lanes: list[int | None]) -> list[tuple[int, int, list[int]]]:
    context = multiprocessing.get_context("fork")  # as granian starts its workers
    pipes = [context.Pipe(duplex=False) for _ in lanes]
    children = [
        context.Process(target=_child, args=(lane, sender))
        for lane, (_, sender) in zip(lanes, pipes, strict=True)
    ]
    for child in children:
        child.start()
    results = [receiver.recv() for receiver, _ in pipes]
    for child in children:
        child.join(30)
    return results


def test_processes_on_different_lanes_never_get_the_same_time() -> None:
    (_, _, first), (_, _, second) = run_children([3, 5])
    assert not set(first) & set(second)
    assert {t % stamps.STEP for t in first} == {3}


def test_a_forked_worker_takes_its_own_lane() -> None:
    for pid, lane, _ in run_children([None, None]):
        assert lane == pid % stamps.STEP
