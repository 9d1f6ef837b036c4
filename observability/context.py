"""What a log line says about where it comes from: the web request, the Celery task, the
monitor and the account being worked on. Held in contextvars, so concurrent requests (threads)
and tasks never see each other's values; ``logs.ContextFilter`` copies them onto every record."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

FIELDS = ("request_id", "task_id", "task_name", "monitor_id", "account_id")

_vars: dict[str, contextvars.ContextVar[str | int | None]] = {
    name: contextvars.ContextVar(f"growalert_{name}", default=None) for name in FIELDS
}


def current() -> dict[str, str | int]:
    """The fields set in this context (those unset are left out)."""
    values = {name: var.get() for name, var in _vars.items()}
    return {name: value for name, value in values.items() if value is not None}


def get(name: str) -> str | int | None:
    return _vars[name].get()


def set_fields(**fields: str | int | None) -> list[contextvars.Token[str | int | None]]:
    """Sets fields (unknown names are an error); returns the tokens ``reset`` takes."""
    return [_vars[name].set(value) for name, value in fields.items()]


def reset(tokens: list[contextvars.Token[str | int | None]]) -> None:
    for token in reversed(tokens):
        token.var.reset(token)


@contextmanager
def bound(**fields: str | int | None) -> Iterator[None]:
    """``with bound(monitor_id=7, account_id=3): ...``: every log line inside carries them."""
    tokens = set_fields(**fields)
    try:
        yield
    finally:
        reset(tokens)
