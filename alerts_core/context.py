"""A cancellation and deadline context, the analogue of Go's ``context.Context``.

A :class:`Context` is immutable apart from its cancellation: deriving one (``with_timeout``,
``with_cancel``, ``with_value``) returns a child that is done when its parent is done, when its
own deadline passes, or when it is cancelled. Checks receive one and should honour it: stop
waiting once ``ctx.done()`` is true, and pass ``ctx.remaining()`` as the timeout of any blocking
call (sockets, ``urlopen``, locks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class ContextError(Exception):
    """Why a context is done."""


class Canceled(ContextError):
    def __init__(self) -> None:
        super().__init__("context canceled")


class DeadlineExceeded(ContextError, TimeoutError):
    def __init__(self) -> None:
        super().__init__("context deadline exceeded")


CancelFunc = Callable[[], None]


class Context:
    """Deadline, cancellation and request-scoped values for one unit of work.

    Build one with :func:`background`, then derive children. Deadlines are on the monotonic
    clock (``time.monotonic()`` seconds)."""

    __slots__ = ("_deadline", "_error", "_event", "_parent", "_values")
    # Finishing and waiting are rare next to creating contexts (one per check), so they share
    # one lock and the Event a waiter sleeps on is only made when someone waits.
    _lock = threading.Lock()

    def __init__(
        self,
        parent: Context | None = None,
        *,
        deadline: float | None = None,
        values: dict[object, Any] | None = None,
    ) -> None:
        self._parent = parent
        inherited = parent.deadline if parent is not None else None
        if inherited is not None and (deadline is None or inherited < deadline):
            deadline = inherited
        self._deadline = deadline
        self._event: threading.Event | None = None
        self._error: ContextError | None = None
        self._values = values or {}

    # ------------------------------------------------------------ deriving

    def with_timeout(self, seconds: float) -> tuple[Context, CancelFunc]:
        """A child that is done after ``seconds`` (or earlier, with its parent)."""
        return self.with_deadline(time.monotonic() + seconds)

    def with_deadline(self, deadline: float) -> tuple[Context, CancelFunc]:
        child = Context(self, deadline=deadline)
        return child, child.cancel

    def with_cancel(self) -> tuple[Context, CancelFunc]:
        child = Context(self)
        return child, child.cancel

    def with_value(self, key: object, value: Any) -> Context:
        return Context(self, values={key: value})

    # ------------------------------------------------------------ reading

    @property
    def deadline(self) -> float | None:
        """The monotonic time at which this context expires, if any."""
        return self._deadline

    def remaining(self) -> float | None:
        """Seconds until the deadline (never negative), or None without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def value(self, key: object, default: Any = None) -> Any:
        """The value stored under ``key`` here or in an ancestor."""
        ctx: Context | None = self
        while ctx is not None:
            if key in ctx._values:
                return ctx._values[key]
            ctx = ctx._parent
        return default

    def err(self) -> ContextError | None:
        """None while the context is live; then :class:`Canceled` or :class:`DeadlineExceeded`."""
        if self._error is not None:
            return self._error
        if self._parent is not None:
            inherited = self._parent.err()
            if inherited is not None:
                return self._finish(inherited)
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return self._finish(DeadlineExceeded())
        return None

    def done(self) -> bool:
        """True once cancelled, past the deadline, or the parent is done."""
        return self.err() is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until done (True) or ``timeout`` seconds pass (False)."""
        limit = None if timeout is None else time.monotonic() + timeout
        while not self.done():
            step = 0.05  # a parent's cancellation is noticed within this
            remaining = self.remaining()
            if remaining is not None:
                step = min(step, remaining)
            if limit is not None:
                left = limit - time.monotonic()
                if left <= 0:
                    return False
                step = min(step, left)
            self._waiter().wait(step)
        return True

    def _waiter(self) -> threading.Event:
        with self._lock:
            if self._event is None:
                self._event = threading.Event()
                if self._error is not None:
                    self._event.set()
            return self._event

    # ------------------------------------------------------------ cancelling

    def cancel(self) -> None:
        """Cancels this context and every context derived from it."""
        self._finish(Canceled())

    def _finish(self, error: ContextError) -> ContextError:
        with self._lock:
            if self._error is None:
                self._error = error
                if self._event is not None:
                    self._event.set()
            return self._error

    def __repr__(self) -> str:
        state = "live" if self._error is None else str(self._error)
        return f"<Context deadline={self._deadline} {state}>"


def background() -> Context:
    """The root context: never done unless cancelled."""
    return Context()
