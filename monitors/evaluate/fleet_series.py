"""A fleet monitor's series rows in Postgres (``monitors_seriesstate``): read once per tick
(``known_series``: one raw query, each stored state decoded once per row version in this
process), and written in the tick's transaction (``evaluate.fleet``): the monitor's own row
claimed conditionally (``claim``), then new series inserted and changed ones updated with the
same conditional update as monitors (``write``: ``state_version`` as read, ``evaluated_due_at``
before this tick). A series whose update finds another version acts on nothing this tick."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

import alerts_core as ac
from monitors.models import Monitor

_CLAIM = """
UPDATE monitors_monitor
SET status = %(status)s,
    status_reason = %(reason)s,
    status_changed_at = CASE WHEN status = %(status)s THEN status_changed_at ELSE %(now)s END,
    state_version = state_version + 1,
    last_value = NULL,
    last_evaluated_at = %(now)s,
    evaluated_due_at = %(due_at)s
WHERE id = %(id)s
  AND state_version = %(version)s
  AND (evaluated_due_at IS NULL OR evaluated_due_at < %(due_at)s)
RETURNING state_version
"""
_INSERT = """
INSERT INTO monitors_seriesstate (
    monitor_id, key, tags, status, state, state_version, status_reason, status_changed_at,
    last_value, last_evaluated_at, evaluated_due_at, created_at
)
SELECT %(monitor)s, v.key, v.tags, v.status, v.state, 1, v.reason, %(now)s,
    v.value, %(now)s, %(due_at)s, %(now)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    key text, tags jsonb, status text, state jsonb, reason text, value float8
)
ON CONFLICT (monitor_id, key) DO NOTHING
RETURNING key
"""
_UPDATE = """
UPDATE monitors_seriesstate AS s
SET status = v.status,
    state = v.state,
    state_version = s.state_version + 1,
    status_reason = v.reason,
    status_changed_at = CASE WHEN s.status = v.status THEN s.status_changed_at ELSE %(now)s END,
    last_value = v.value,
    last_evaluated_at = %(now)s,
    evaluated_due_at = %(due_at)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(
    id bigint, version bigint, status text, state jsonb, reason text, value float8
)
WHERE s.id = v.id
  AND s.monitor_id = %(monitor)s
  AND s.state_version = v.version
  AND (s.evaluated_due_at IS NULL OR s.evaluated_due_at < %(due_at)s)
RETURNING s.key, s.state_version
"""


# A tick reads its series without their stored states (a third of a kB each): a steady series
# keeps its version, whose state this process has decoded already (_DECODED). The rows whose
# version it has not seen are read again in full, state included, in a second statement; a
# row read twice is taken whole from the second read, so its columns and state always belong
# to one version.
_KNOWN = """
SELECT id, key, tags::text, status, state_version, last_value,
    extract(epoch FROM last_evaluated_at)::float8
FROM monitors_seriesstate
WHERE monitor_id = %s
"""
_FULL = """
SELECT id, key, tags::text, status, state_version, last_value,
    extract(epoch FROM last_evaluated_at)::float8, state::text
FROM monitors_seriesstate
WHERE monitor_id = %s AND id = ANY(%s)
"""


# Decoded series states by (row id, state_version): a steady series is not rewritten, so the
# next tick reads the same version and skips decoding it. A row's version moves on with every
# write and a new row has a new id, so an entry can never stand for another state; states are
# immutable. Bounded: cleared when full.
MAX_DECODED = 200_000
_DECODED: dict[tuple[int, int], ac.MonitorState] = {}


@dataclass(slots=True)
class SeriesRow:
    """A stored series as evaluation reads it: the columns it needs, read in one raw query
    (10,000 model instances with their timestamps cost a second of Python per tick)."""

    pk: int
    key: str
    tags_json: str  # decoded only for a series that did not answer (its tags come back)
    status: str
    state_version: int
    last_value: float | None
    last_evaluated_at: float | None  # epoch seconds
    state_json: str | None = None  # None: its version's state is in _DECODED

    def alert_state(self) -> ac.MonitorState:
        """The stored state, decoded once per row version in this process (see _DECODED)."""
        version = (self.pk, self.state_version)
        state = _DECODED.get(version)
        if state is None:
            if self.state_json is None:  # gone between the two reads: nothing to carry on
                return ac.MonitorState()
            data = json.loads(self.state_json)
            state = ac.MonitorState.from_dict(data) if data else ac.MonitorState()
            if len(_DECODED) >= MAX_DECODED:
                _DECODED.clear()
            _DECODED[version] = state
        return state

    @property
    def tags(self) -> dict[str, str]:
        decoded: dict[str, str] = json.loads(self.tags_json)
        return decoded


def known_series(monitor: Monitor) -> dict[str, SeriesRow]:
    """The monitor's stored series by key (JSON columns come back as text: Django leaves
    their decoding to the model field, which a raw query skips)."""
    with connection.cursor() as cursor:
        cursor.execute(_KNOWN, [monitor.pk])
        known = {row[1]: SeriesRow(*row) for row in cursor.fetchall()}
        unseen = [r.pk for r in known.values() if (r.pk, r.state_version) not in _DECODED]
        if unseen:
            cursor.execute(_FULL, [monitor.pk, unseen])
            for row in cursor.fetchall():
                known[row[1]] = SeriesRow(*row)
    return known


@dataclass
class SeriesDecision:
    """One series' evaluation, decided but not yet written."""

    key: str
    tags: dict[str, str]
    row: SeriesRow | None  # None: a series seen for the first time
    value: float | None
    outcome: ac.Outcome
    state: ac.MonitorState
    events: list[ac.Event]
    write: bool
    version: int = 0  # its state_version once written
    points: list[list[Any]] = field(default_factory=list)

    @property
    def notifying(self) -> list[ac.Event]:
        return [e for e in self.events if e.notifies]


def claim(monitor: Monitor, due_at: datetime, now: datetime, status: str, reason: str) -> bool:
    """The monitor's row for this tick, conditionally: False when this tick is not ours."""
    params: dict[str, Any] = {
        "status": status,
        "reason": reason,
        "now": now,
        "due_at": due_at,
        "id": monitor.pk,
        "version": monitor.state_version,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, params)
        row = cursor.fetchone()
    if row is None:
        return False
    monitor.state_version = row[0]
    return True


def write(
    monitor: Monitor, due_at: datetime, now: datetime, decisions: list[SeriesDecision]
) -> set[str]:
    """Inserts new series and updates changed ones; returns the keys written."""
    written: set[str] = set()
    base: dict[str, Any] = {"monitor": monitor.pk, "now": now, "due_at": due_at}
    new = [d for d in decisions if d.row is None]
    changed = [d for d in decisions if d.row is not None and d.write]
    with connection.cursor() as cursor:
        if new:
            cursor.execute(_INSERT, {**base, "rows": json.dumps([_row(d) for d in new])})
            inserted = {key for (key,) in cursor.fetchall()}
            for d in new:
                d.version = 1
            written |= inserted
        if changed:
            rows = [
                {**_row(d), "id": d.row.pk, "version": d.row.state_version}
                for d in changed
                if d.row is not None
            ]
            cursor.execute(_UPDATE, {**base, "rows": json.dumps(rows)})
            by_key = {d.key: d for d in changed}
            for key, version in cursor.fetchall():
                written.add(key)
                by_key[key].version = version
    return written


def _row(d: SeriesDecision) -> dict[str, Any]:
    return {
        "key": d.key,
        "tags": d.tags,
        "status": d.state.status.value,
        "state": d.state.to_dict(),
        "reason": d.outcome.message[:500],
        "value": d.value,
    }
