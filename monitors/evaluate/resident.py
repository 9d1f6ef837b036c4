"""Monitors kept in an evaluation worker between ticks, so a steady monitor costs one short row
of the database per tick instead of a whole model instance built again.

A monitor evaluated every second is the same row tick after tick: only what a quiet evaluation
writes (``QUIET_FIELDS``: its value, reason and when it was evaluated) moves, and a settled
monitor's steady ticks write not even that (the pipeline's ``_unwritten``: a refresh every
``EVALUATION_ROW_REFRESH_SECONDS``). Each tick the batch's ids are asked for their ``revision``
(with the tick their row was last written with, in the same statement); a database trigger
moves it with every write that changes anything else (migration 0026); a monitor whose
revision is the one it was loaded with is reused as it is, with its alert state and rules
already parsed; the others are loaded through the ORM as before and kept. Any write that is
not quiet (an edit, a transition, a pause, a row changed by hand) moves the revision, so a kept
monitor is never stale in what evaluation reads. A revision read before a concurrent write
and a row loaded after it only cost a reload at the next tick. (Until 2026-12-03 the
fingerprint was an ``md5`` of the row's other columns, computed by Postgres each tick: 12-17 ms
of Postgres per 1,000 evaluations, ``bench/profile_polling.py``.)

A write the worker makes itself keeps its monitor too. A transition's whole write
(``_APPLY_POLLED`` in the pipeline) returns the revision of the row it leaves (``FINGERPRINT``,
read on the new row); once committed, ``written`` puts the new state, status and version in the
kept monitor and records that fingerprint. Before, every transition, and every tick of a new
monitor with flap detection (its history grows each check for the first ``FLAP_HISTORY_WINDOW``
checks, a whole write each time), reloaded the monitor at the next tick: a profiled tick of
1,000 fresh monitors reloaded all 1,000 for 21 ticks in a row. Should the write be rolled back
after all, the row's revision is the old one again: a reload, never a stale monitor.

Per process (a prefork worker's child), at most ``MAX_RESIDENT`` monitors; past that the set is
emptied and refilled by the next ticks.

Kept monitors are long-lived objects, and Python's cyclic garbage collector walks every one of
them at each full collection: profiled, full collections took ~60 ms each, a third of a steady
1,000-monitor tick's CPU on average. So a tick that loads rows freezes what is alive then
(``gc.freeze``: left out of collections; reference counting still frees it). Garbage in
reference cycles frozen that way would stay, so every ``THAW_EVERY`` freezes everything is
thawed and collected once.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection

import alerts_core as ac
from monitors.definition import Thresholds
from monitors.influxdb import observe
from monitors.models import Monitor

MAX_RESIDENT = 50_000
THAW_EVERY = 100  # freezes between two full collections of everything
#: what an evaluation that changes no state writes (pipeline's quiet update)
QUIET_FIELDS = frozenset({"status_reason", "last_value", "last_evaluated_at", "evaluated_due_at"})

#: a monitor row's fingerprint, on the row aliased ``m`` (in an UPDATE's RETURNING: the new row)
FINGERPRINT = "m.revision"
# With the revision, the tick the row was last written with (epoch seconds: Django's
# timestamptz loader is pure Python), which tells the pipeline when a quiet evaluation is due
# to refresh the row (``pipeline._unwritten``).
_FINGERPRINTS = """
SELECT m.id, m.revision, extract(epoch FROM m.evaluated_due_at)::float8
FROM monitors_monitor AS m
WHERE m.id = ANY(%s::bigint[]) AND m.enabled
"""


@dataclass(slots=True)
class _Resident:
    fingerprint: int
    monitor: Monitor
    state: ac.MonitorState | None = None
    rules: tuple[ac.Policy, Thresholds | None] | None = None
    written_s: float | None = None  # the row's evaluated_due_at when this tick began
    # Whether its last evaluation passed and settled from ``state`` (``settle``), silenced or
    # not; None: it did not, or ``state`` has changed since.
    settled_silenced: bool | None = None


_resident: dict[int, _Resident] = {}


def load(ids: list[int], load_rows: Callable[[list[int]], list[Monitor]]) -> list[Monitor]:
    """The enabled monitors among ``ids``: kept ones whose row has not changed, the others
    through ``load_rows`` (and kept from now on)."""
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINTS, [ids])
        rows: list[tuple[int, int, float | None]] = cursor.fetchall()
    fingerprints: dict[int, int] = {}
    written: dict[int, float | None] = {}
    kept: list[Monitor] = []
    missing: list[int] = []
    for pk, fingerprint, written_s in rows:
        fingerprints[pk] = fingerprint
        entry = _resident.get(pk)
        if entry is not None and entry.fingerprint == fingerprint:
            entry.written_s = written_s
            kept.append(entry.monitor)
        else:
            written[pk] = written_s
            missing.append(pk)
    loaded = load_rows(missing) if missing else []
    if len(_resident) + len(loaded) > MAX_RESIDENT:
        _resident.clear()
    for monitor in loaded:
        if monitor.id in fingerprints:
            _resident[monitor.id] = _Resident(
                fingerprints[monitor.id], monitor, written_s=written.get(monitor.id)
            )
    if loaded:
        _freeze()
    return kept + loaded


_freezes = 0


def _freeze() -> None:
    """Leaves the objects alive now (the kept monitors among them) out of garbage collection,
    and every THAW_EVERY calls collects everything once first."""
    global _freezes
    _freezes += 1
    if _freezes >= THAW_EVERY:
        _freezes = 0
        gc.unfreeze()
        gc.collect()
    gc.freeze()


def written(monitor: Monitor, state: ac.MonitorState, fingerprint: int) -> None:
    """After a committed whole write of ``state`` (its version already in ``monitor``) that
    left the row with ``fingerprint``: a kept monitor takes the new state and is reused as it
    is at the next tick. A monitor this process does not keep is left alone."""
    entry = _entry(monitor)
    if entry is None:
        return
    monitor.state = state.to_dict()
    monitor.status = state.status.value
    entry.state = state
    entry.settled_silenced = None
    entry.fingerprint = fingerprint


def settle(monitor: Monitor, state: ac.MonitorState, *, silenced: bool) -> None:
    """Records that an evaluation of a kept monitor with fixed thresholds passed from ``state``
    (its kept state), ``silenced`` or not, and settled: nothing to write, nobody told
    (``pipeline._unwritten``)."""
    entry = _entry(monitor)
    if entry is not None and entry.state is state and entry.rules and entry.rules[1] is not None:
        entry.settled_silenced = silenced


class Settled(NamedTuple):
    thresholds: Thresholds
    silenced: bool  # as it was when it settled
    written_s: float  # the row's last written tick (``written_s``)


def settled(monitor: Monitor) -> Settled | None:
    """For a kept monitor whose last evaluation settled (``settle``) from the state it still
    has, on a row written before: its thresholds, whether it was silenced then, and when its
    row was last written."""
    entry = _entry(monitor)
    if entry is None or entry.settled_silenced is None or entry.rules is None:
        return None
    thresholds = entry.rules[1]
    if thresholds is None or entry.written_s is None:
        return None
    return Settled(thresholds, entry.settled_silenced, entry.written_s)


def _entry(monitor: Monitor) -> _Resident | None:
    entry = _resident.get(monitor.id)
    return entry if entry is not None and entry.monitor is monitor else None


def written_s(monitor: Monitor) -> float | None:
    """When a kept monitor's row was last written (its ``evaluated_due_at`` as this tick read
    it, epoch seconds); None for a monitor this process does not keep, or a row never
    evaluated."""
    entry = _entry(monitor)
    return entry.written_s if entry is not None else None


def alert_state(monitor: Monitor) -> ac.MonitorState:
    """``monitor.alert_state()``, parsed once per loaded row."""
    entry = _entry(monitor)
    if entry is None:
        return monitor.alert_state()
    if entry.state is None:
        entry.state = monitor.alert_state()
    return entry.state


def rules(monitor: Monitor) -> tuple[ac.Policy, Thresholds | None]:
    """The monitor's policy and thresholds, built once per loaded row (raises as
    ``Monitor.policy`` and ``Monitor.thresholds`` do for a row planted past validation). A
    monitor with day and night thresholds gets None for them: which set applies depends on the
    moment of each evaluation (``step.step`` picks it)."""
    entry = _entry(monitor)
    if entry is None:
        return monitor.policy(), _fixed_thresholds(monitor)
    if entry.rules is None:
        entry.rules = (monitor.policy(), _fixed_thresholds(monitor))
    return entry.rules


def _fixed_thresholds(monitor: Monitor) -> Thresholds | None:
    return None if monitor.has_photoperiod else monitor.thresholds()


def forget() -> None:
    """Empties this process's set (tests that rewrite rows behind evaluation's back), and the
    batches' plans made of its monitors."""
    _resident.clear()
    observe.forget_plans()
    gc.unfreeze()
