"""A Monitor ties a Check, an Alert and an Interval together with a Policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from alerts_core.check import Alert, Check
from alerts_core.interval import Interval, fixed
from alerts_core.state import Event, Policy


@dataclass(frozen=True)
class Monitor:
    """Runs ``check`` every ``interval`` and calls ``alert`` when it fails.

    ``alert`` is called with the check's error for every event that notifies and is a problem
    (fired, repeated, warning raised); ``on_event``, if given, receives every event, resolves
    included. ``timeout`` bounds each check through its context's deadline.
    """

    name: str
    check: Check
    alert: Alert
    interval: Interval = field(default_factory=lambda: fixed(timedelta(minutes=1)))
    policy: Policy = field(default_factory=Policy)
    timeout: timedelta = timedelta(seconds=10)
    on_event: Callable[[Event], None] | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a monitor needs a name")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
