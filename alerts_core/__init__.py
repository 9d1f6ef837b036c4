"""alerts_core: a dependency-free alerting library (standard library only).

A :class:`Monitor` ties a :data:`Check` (``ctx -> (ok, error)``), an :data:`Alert` and an
:data:`Interval` together with a :class:`Policy`; a :class:`Runner` runs many of them with one
scheduler thread and a bounded worker pool. The decisions come from :func:`transition`, a pure
function of (state, outcome, policy, now) that the growalert service also uses for monitors
evaluated on InfluxDB data.
"""

from alerts_core.check import Alert, Check, CheckFailed, call_alert, run_check
from alerts_core.context import Canceled, Context, ContextError, DeadlineExceeded, background
from alerts_core.interval import Interval, backoff, fixed, jittered
from alerts_core.monitor import Monitor
from alerts_core.runner import Runner
from alerts_core.state import (
    DataPolicy,
    Event,
    EventKind,
    MonitorState,
    Outcome,
    OutcomeKind,
    Policy,
    Status,
    pause,
    redefine,
    resume,
    transition,
)
from alerts_core.vocabulary import Aggregation, Comparator

__all__ = [
    "Aggregation",
    "Alert",
    "Canceled",
    "Check",
    "CheckFailed",
    "Comparator",
    "Context",
    "ContextError",
    "DataPolicy",
    "DeadlineExceeded",
    "Event",
    "EventKind",
    "Interval",
    "Monitor",
    "MonitorState",
    "Outcome",
    "OutcomeKind",
    "Policy",
    "Runner",
    "Status",
    "background",
    "backoff",
    "call_alert",
    "fixed",
    "jittered",
    "pause",
    "redefine",
    "resume",
    "run_check",
    "transition",
]
