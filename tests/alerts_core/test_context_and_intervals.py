from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest

from alerts_core import Canceled, DeadlineExceeded, background, backoff, fixed, jittered


def test_deadline_and_cancellation_propagate_to_children():
    parent, cancel = background().with_cancel()
    child, _ = parent.with_timeout(60)
    grandchild = child.with_value("request", 42)
    assert not grandchild.done()
    assert grandchild.value("request") == 42
    assert grandchild.value("missing", "x") == "x"
    cancel()
    assert grandchild.done()
    assert isinstance(grandchild.err(), Canceled)


def test_a_child_never_outlives_its_parent_deadline():
    parent, _ = background().with_timeout(0.05)
    child, _ = parent.with_timeout(60)
    assert child.deadline == parent.deadline
    began = time.monotonic()
    assert child.wait(5)
    assert time.monotonic() - began < 1
    assert isinstance(child.err(), DeadlineExceeded)


def test_wait_times_out_on_a_live_context():
    ctx = background()
    assert ctx.wait(0.02) is False
    assert ctx.remaining() is None


def test_intervals():
    assert fixed(timedelta(seconds=5))(3) == timedelta(seconds=5)
    spread = {
        jittered(timedelta(seconds=10), spread=0.2, rng=random.Random(1))(0) for _ in range(20)
    }
    assert all(timedelta(seconds=8) <= s <= timedelta(seconds=12) for s in spread)
    grow = backoff(timedelta(seconds=1), maximum=timedelta(seconds=30), jitter=0)
    assert [grow(n).total_seconds() for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    with pytest.raises(ValueError, match="positive"):
        fixed(timedelta(0))
