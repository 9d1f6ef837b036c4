"""Checks and alerts: the two function types the library is built on.

* A :data:`Check` returns ``(ok, error)``. ``(True, None)`` passes; ``(True, error)`` passes
  degraded (a warning); ``(False, error_or_None)`` fails. A check that raises has failed, with
  what it raised as its error.
* An :data:`Alert` is told about failures. Alerts cannot fail: whatever one raises is logged
  and swallowed by :func:`call_alert`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from alerts_core.context import Context, ContextError
from alerts_core.state import Outcome

logger = logging.getLogger("alerts_core")

Check = Callable[[Context], tuple[bool, BaseException | None]]
Alert = Callable[..., None]  # (ctx: Context, *errors: BaseException) -> None


class CheckFailed(Exception):
    """The error given to an alert when a check failed without saying why."""


def run_check(check: Check, ctx: Context) -> Outcome:
    """Runs ``check`` and turns what it did into an :class:`Outcome`. Never raises (except
    for ``KeyboardInterrupt``/``SystemExit``)."""
    try:
        ok, error = check(ctx)
    except Exception as exc:  # a raising check has failed, with that error
        return Outcome.failed(error=exc)
    late = ctx.err()
    if isinstance(late, ContextError) and not ok and error is None:
        error = late
    if ok:
        return Outcome.degraded(error=error) if error is not None else Outcome.passed()
    return Outcome.failed(error=error or CheckFailed("check failed"))


def call_alert(alert: Alert, ctx: Context, *errors: BaseException) -> None:
    """Calls ``alert``; anything it raises is logged, never propagated."""
    try:
        alert(ctx, *errors)
    except Exception:
        logger.exception("alert %r raised; alerts cannot fail, so it was ignored", alert)
