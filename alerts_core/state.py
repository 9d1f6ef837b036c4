"""The alert state machine: a pure function from (state, outcome, policy, now) to
(new state, events). No I/O and no clock: ``now`` is passed in, so the in-process runner, the
Django workers and a backtest over history all get the same decisions.

Vocabulary
----------
* An :class:`Outcome` is what one evaluation saw: passed, degraded (passed with an error:
  a warning), failed, no data, or error (the check itself could not run).
* The :class:`Policy` says how outcomes become statuses: ``pending_for`` consecutive failures
  before firing, ``recover_after`` consecutive passes before resolving (hysteresis), how often
  to repeat while firing, what no-data and errors mean, and flap detection.
* :class:`MonitorState` is everything the machine remembers; it round-trips through JSON
  (:meth:`MonitorState.to_dict` / :meth:`MonitorState.from_dict`).
* :class:`Event` s are what happened: fired, resolved, repeated, warning raised/cleared,
  flapping started/stopped. ``event.notifies`` says whether a human should be told; events
  still happen, but do not notify, while the monitor is silenced or flapping. When the
  silence ends, or the flapping stops, and what the user was last told differs from the
  truth, a *catch-up* event (``catch_up=True``) tells them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class Status(enum.StrEnum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    WARNING = "warning"
    NO_DATA = "no_data"
    ERROR = "error"
    PAUSED = "paused"


class OutcomeKind(enum.StrEnum):
    PASSED = "passed"
    DEGRADED = "degraded"
    FAILED = "failed"
    NO_DATA = "no_data"
    ERROR = "error"


class DataPolicy(enum.StrEnum):
    """What a no-data or error outcome means."""

    ALERTING = "alerting"  #: counts as a failure (can fire)
    OK = "ok"  #: counts as a pass (can resolve)
    KEEP_LAST = "keep_last"  #: changes nothing; the previous status stays
    STATUS = "status"  #: shows as its own status (no data / error); never fires nor resolves


class EventKind(enum.StrEnum):
    FIRED = "fired"
    RESOLVED = "resolved"
    REPEATED = "repeated"
    WARNING_RAISED = "warning_raised"
    WARNING_CLEARED = "warning_cleared"
    FLAPPING_STARTED = "flapping_started"
    FLAPPING_STOPPED = "flapping_stopped"
    #: stopped firing because the monitor was paused (:func:`pause`): its incident ends
    PAUSED = "paused"
    #: stopped firing because the monitor's definition changed (:func:`redefine`)
    REDEFINED = "redefined"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one evaluation. Build with the class methods."""

    kind: OutcomeKind
    value: float | None = None
    message: str = ""
    exception: BaseException | None = None

    @classmethod
    def passed(cls, value: float | None = None, message: str = "") -> Outcome:
        return cls(OutcomeKind.PASSED, value, message)

    @classmethod
    def degraded(
        cls, value: float | None = None, message: str = "", error: BaseException | None = None
    ) -> Outcome:
        return cls(OutcomeKind.DEGRADED, value, message or _text(error), error)

    @classmethod
    def failed(
        cls, value: float | None = None, message: str = "", error: BaseException | None = None
    ) -> Outcome:
        return cls(OutcomeKind.FAILED, value, message or _text(error), error)

    @classmethod
    def no_data(cls, message: str = "no data") -> Outcome:
        return cls(OutcomeKind.NO_DATA, None, message)

    @classmethod
    def error(cls, error: BaseException, message: str = "") -> Outcome:
        return cls(OutcomeKind.ERROR, None, message or _text(error), error)


def _text(error: BaseException | None) -> str:
    if error is None:
        return ""
    return str(error) or type(error).__name__


@dataclass(frozen=True, slots=True)
class Policy:
    """How outcomes become statuses and which changes notify."""

    pending_for: int = 1
    recover_after: int = 1
    repeat_every: timedelta | None = None
    no_data: DataPolicy = DataPolicy.STATUS
    error: DataPolicy = DataPolicy.STATUS
    flap_detection: bool = True
    #: Nagios-style: percent state change over the last ``flap_window`` evaluations, recent
    #: changes weighing more; flapping starts above ``flap_high`` and stops below ``flap_low``.
    flap_window: int = 21
    flap_high: float = 50.0
    flap_low: float = 25.0

    def __post_init__(self) -> None:
        if self.pending_for < 1 or self.recover_after < 1:
            raise ValueError("pending_for and recover_after must be at least 1")
        if self.repeat_every is not None and self.repeat_every <= timedelta(0):
            raise ValueError("repeat_every must be positive")
        if not 3 <= self.flap_window <= 64:
            raise ValueError("flap_window must be between 3 and 64")
        if not 0 <= self.flap_low <= self.flap_high <= 100:
            raise ValueError("need 0 <= flap_low <= flap_high <= 100")


@dataclass(frozen=True, slots=True)
class MonitorState:
    """What the machine remembers between evaluations (JSON-serialisable)."""

    status: Status = Status.OK
    #: an incident is open: fired and not yet resolved
    alerting: bool = False
    #: a warning has been raised and not cleared
    warning: bool = False
    failures: int = 0  #: consecutive failing evaluations
    passes: int = 0  #: consecutive passing evaluations
    since: datetime | None = None  #: when ``status`` last changed
    fired_at: datetime | None = None
    last_notified_at: datetime | None = None
    #: what the user was last told: True after a notified fired, False after a notified resolve
    announced: bool = False
    silenced: bool = False
    flapping: bool = False
    #: flap history as bits, newest in bit 0 (1 = a failing evaluation), and how many are valid
    history: int = 0
    history_len: int = 0
    value: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "alerting": self.alerting,
            "warning": self.warning,
            "failures": self.failures,
            "passes": self.passes,
            "since": _iso(self.since),
            "fired_at": _iso(self.fired_at),
            "last_notified_at": _iso(self.last_notified_at),
            "announced": self.announced,
            "silenced": self.silenced,
            "flapping": self.flapping,
            "history": self.history,
            "history_len": self.history_len,
            "value": self.value,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorState:
        """The inverse of :meth:`to_dict`; unknown keys are ignored, missing ones default."""
        return cls(
            status=Status(data.get("status", "ok")),
            alerting=bool(data.get("alerting", False)),
            warning=bool(data.get("warning", False)),
            failures=int(data.get("failures", 0)),
            passes=int(data.get("passes", 0)),
            since=_parse(data.get("since")),
            fired_at=_parse(data.get("fired_at")),
            last_notified_at=_parse(data.get("last_notified_at")),
            announced=bool(data.get("announced", False)),
            silenced=bool(data.get("silenced", False)),
            flapping=bool(data.get("flapping", False)),
            history=int(data.get("history", 0)),
            history_len=int(data.get("history_len", 0)),
            value=data.get("value"),
            reason=str(data.get("reason", "")),
        )

    def flap_percent(self, window: int = 21) -> float | None:
        """The weighted percent state change over the last ``window`` evaluations (None until
        that many have been seen)."""
        if self.history_len < window:
            return None
        return _flap_percent(self.history, window)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: Any) -> datetime | None:
    return None if not text else datetime.fromisoformat(str(text))


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a monitor."""

    kind: EventKind
    at: datetime
    status: Status
    previous_status: Status
    value: float | None = None
    message: str = ""
    notifies: bool = True
    #: tells the user late what a silence or flapping kept from them
    catch_up: bool = False
    error: BaseException | None = field(default=None, compare=False)


def _slot_writer(cls: type[Any]) -> Any:
    """A positional constructor for a frozen, slotted dataclass that writes each slot through
    its member descriptor once, before the object is shared. The dataclass's own ``__init__``
    calls ``object.__setattr__`` per field, which made up half of a transition's cost."""
    names = [f.name for f in dataclasses.fields(cls)]
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    set_{name}(obj, {name})\n" for name in names)
    source = f"def make({', '.join(names)}):\n    obj = new(cls)\n{body}    return obj\n"
    exec(source, namespace)  # noqa: S102 (the source is built from the class's own field names)
    return namespace["make"]


#: ``MonitorState(*fields)`` for the transition's hot path (same object, ~2x faster to build)
_new_state = _slot_writer(MonitorState)


# ------------------------------------------------------------------------------ flapping


@functools.cache
def _flap_tables(window: int) -> tuple[tuple[float, ...], ...]:
    """Per byte of the change mask, the summed weights of its set bits. Change i (0 = newest)
    weighs from 1.2 (newest) down to 0.8 (oldest), as Nagios does."""
    changes = window - 1
    weights = [1.2 - 0.4 * i / (changes - 1) for i in range(changes)]
    tables = []
    for offset in range(0, changes, 8):
        tables.append(
            tuple(
                sum(weights[offset + b] for b in range(8) if byte >> b & 1 and offset + b < changes)
                for byte in range(256)
            )
        )
    return tuple(tables)


def _flap_percent(history: int, window: int) -> float:
    changes = (history ^ (history >> 1)) & ((1 << (window - 1)) - 1)
    total = 0.0
    for table in _flap_tables(window):
        total += table[changes & 0xFF]
        changes >>= 8
    return total * 100.0 / (window - 1)


# ------------------------------------------------------------------------------ transition

_NOTHING: tuple[Event, ...] = ()


def transition(
    state: MonitorState,
    outcome: Outcome,
    policy: Policy,
    now: datetime,
    *,
    silenced: bool = False,
) -> tuple[MonitorState, list[Event]]:
    """Applies one evaluation's outcome. Pure: same inputs, same result.

    ``silenced`` (a maintenance window or a silence) keeps every state change but stops it from
    notifying; when a later call is not silenced and the user's last notification disagrees with
    the truth, a catch-up event notifies.
    """
    kind = outcome.kind
    previous = state.status
    if kind is OutcomeKind.NO_DATA or kind is OutcomeKind.ERROR:
        data_policy = policy.no_data if kind is OutcomeKind.NO_DATA else policy.error
        if data_policy is DataPolicy.KEEP_LAST:
            status = previous if previous is not Status.PAUSED else Status.OK
            return _finish(
                state,
                policy,
                now,
                silenced,
                outcome,
                status,
                state.alerting,
                state.warning,
                state.failures,
                state.passes,
                None,
                [],
            )
        if data_policy is DataPolicy.STATUS:
            status = Status.NO_DATA if kind is OutcomeKind.NO_DATA else Status.ERROR
            return _finish(
                state,
                policy,
                now,
                silenced,
                outcome,
                status,
                state.alerting,
                state.warning,
                0,
                0,
                None,
                [],
            )
        failing = data_policy is DataPolicy.ALERTING
        degraded = False
    else:
        failing = kind is OutcomeKind.FAILED
        degraded = kind is OutcomeKind.DEGRADED

    alerting = state.alerting
    warning = state.warning
    events: list[Event] = []
    if failing:
        failures = state.failures + 1
        passes = 0
        if alerting:
            status = Status.FIRING
        elif failures >= policy.pending_for:
            alerting = True
            status = Status.FIRING
            events.append(
                Event(
                    EventKind.FIRED,
                    now,
                    status,
                    previous,
                    outcome.value,
                    outcome.message,
                    error=outcome.exception,
                )
            )
        else:
            status = Status.PENDING
        warning = False  # firing supersedes a warning
    else:
        failures = 0
        passes = state.passes + 1
        if alerting and passes >= policy.recover_after:
            alerting = False
            status = Status.WARNING if degraded else Status.OK
            events.append(
                Event(EventKind.RESOLVED, now, status, previous, outcome.value, outcome.message)
            )
        elif alerting:
            status = Status.FIRING
        else:
            status = Status.WARNING if degraded else Status.OK
        if not alerting:
            if degraded and not warning:
                warning = True
                events.append(
                    Event(
                        EventKind.WARNING_RAISED,
                        now,
                        status,
                        previous,
                        outcome.value,
                        outcome.message,
                        error=outcome.exception,
                    )
                )
            elif warning and not degraded:
                warning = False
                events.append(
                    Event(
                        EventKind.WARNING_CLEARED,
                        now,
                        status,
                        previous,
                        outcome.value,
                        outcome.message,
                    )
                )
    return _finish(
        state,
        policy,
        now,
        silenced,
        outcome,
        status,
        alerting,
        warning,
        failures,
        passes,
        failing,
        events,
    )


def _finish(
    state: MonitorState,
    policy: Policy,
    now: datetime,
    silenced: bool,
    outcome: Outcome,
    status: Status,
    alerting: bool,
    warning: bool,
    failures: int,
    passes: int,
    failing: bool | None,
    events: list[Event],
) -> tuple[MonitorState, list[Event]]:
    """Flap detection, notification suppression, catch-up and repeats; builds the new state."""
    previous = state.status
    history, history_len, flapping = state.history, state.history_len, state.flapping
    if failing is not None and policy.flap_detection:
        window = policy.flap_window
        history = ((history << 1) | failing) & ((1 << window) - 1)
        history_len = min(history_len + 1, window)
        if history_len >= window:
            percent = _flap_percent(history, window)
            if not flapping and percent >= policy.flap_high:
                flapping = True
                events.append(
                    Event(
                        EventKind.FLAPPING_STARTED,
                        now,
                        status,
                        previous,
                        outcome.value,
                        f"flapping: {percent:.0f}% state change "
                        f"over the last {window} evaluations; notifications "
                        "paused until it settles",
                        notifies=not silenced,
                    )
                )
            elif flapping and percent < policy.flap_low:
                flapping = False
                events.append(
                    Event(
                        EventKind.FLAPPING_STOPPED,
                        now,
                        status,
                        previous,
                        outcome.value,
                        f"stopped flapping ({percent:.0f}% state change)",
                        notifies=not silenced,
                    )
                )
    elif failing is not None and flapping:  # flap detection was switched off
        flapping = False

    suppressed = silenced or flapping
    announced = state.announced
    last_notified = state.last_notified_at
    fired_at = now if alerting and not state.alerting else state.fired_at
    if not alerting:
        fired_at = None if not state.alerting else state.fired_at
    if events:
        for i, event in enumerate(events):
            kind = event.kind
            if kind is EventKind.FLAPPING_STARTED or kind is EventKind.FLAPPING_STOPPED:
                continue
            if suppressed:
                events[i] = _quiet(event)
            elif kind is EventKind.FIRED:
                if announced:  # resolved in a silence and fired again: the user still knows
                    events[i] = _quiet(event)
                else:
                    announced = True
                    last_notified = now
            elif kind is EventKind.RESOLVED:
                if announced:
                    announced = False
                    last_notified = now
                else:  # the user never heard it fire: nothing to resolve
                    events[i] = _quiet(event)
    if not suppressed and alerting != announced:
        # a silence ended or flapping stopped with the user told something stale
        kind = EventKind.FIRED if alerting else EventKind.RESOLVED
        message = ("still firing after " if alerting else "resolved during ") + (
            "a silence" if state.silenced else "a flapping period"
        )
        events.append(
            Event(
                kind,
                now,
                status,
                previous,
                outcome.value,
                f"{outcome.message} ({message})",
                catch_up=True,
                error=outcome.exception,
            )
        )
        announced = alerting
        last_notified = now
    elif (
        alerting
        and not suppressed
        and policy.repeat_every is not None
        and status is Status.FIRING
        and last_notified is not None
        and now - last_notified >= policy.repeat_every
        and not any(e.kind is EventKind.FIRED for e in events)
    ):
        events.append(
            Event(
                EventKind.REPEATED,
                now,
                status,
                previous,
                outcome.value,
                outcome.message,
                error=outcome.exception,
            )
        )
        last_notified = now

    new_state: MonitorState = _new_state(
        status,
        alerting,
        warning,
        failures,
        passes,
        now if status is not previous or state.since is None else state.since,
        fired_at,
        last_notified,
        announced,
        silenced,
        flapping,
        history,
        history_len,
        outcome.value,
        outcome.message,
    )
    return new_state, events


def _quiet(event: Event) -> Event:
    return Event(
        event.kind,
        event.at,
        event.status,
        event.previous_status,
        event.value,
        event.message,
        False,
        event.catch_up,
        event.error,
    )


def pause(
    state: MonitorState, now: datetime, *, silenced: bool = False
) -> tuple[MonitorState, list[Event]]:
    """The monitor stops being evaluated. Nothing will ever decide its open incident, so the
    incident ends here: a ``paused`` event tells whoever heard it fire (quiet while
    ``silenced``). Pausing a paused monitor changes nothing."""
    if state.status is Status.PAUSED:
        return state, []
    return _stop(state, Status.PAUSED, now, EventKind.PAUSED, "paused", silenced)


def resume(state: MonitorState, now: datetime) -> MonitorState:
    """Evaluations start again, afresh: no streaks, no history, no incident (the pause ended
    it); ``ok`` until the first evaluation decides (which tells the user it stopped firing if a
    silence kept the pause from them)."""
    if state.status is not Status.PAUSED:
        return state
    # what the user last heard carries over: a pause under a silence told them nothing
    return MonitorState(
        status=Status.OK,
        since=now,
        reason="resumed",
        announced=state.announced,
        silenced=state.silenced,
    )


def redefine(
    state: MonitorState, now: datetime, *, silenced: bool = False
) -> tuple[MonitorState, list[Event]]:
    """The monitor now means something else: its state starts afresh and an open incident
    (about the old definition) ends with a ``redefined`` event. A paused monitor stays paused."""
    if state.status is Status.PAUSED:
        return state, []
    return _stop(state, Status.OK, now, EventKind.REDEFINED, "definition changed", silenced)


def _stop(
    state: MonitorState,
    status: Status,
    now: datetime,
    kind: EventKind,
    reason: str,
    silenced: bool,
) -> tuple[MonitorState, list[Event]]:
    """A fresh state; an event when an incident was open or the user last heard "fired".

    Under a silence the event is quiet, and the fresh state remembers that the user last heard
    "fired": the first check after the silence (or after the resume) tells them the truth."""
    if not (state.alerting or state.announced):
        return MonitorState(status=status, since=now, reason=reason), []
    told = state.announced and not silenced
    fresh = MonitorState(
        status=status,
        since=now,
        reason=reason,
        announced=state.announced and not told,
        silenced=silenced,
    )
    event = Event(kind, now, status, state.status, state.value, _STOPPED[kind], notifies=told)
    return fresh, [event]


_STOPPED = {
    EventKind.PAUSED: "stopped firing: the monitor was paused",
    EventKind.REDEFINED: "stopped firing: its definition changed",
}
