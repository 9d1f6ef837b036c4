"""The one validation of a monitor definition, which the monitors API's serializer and the
monitor page's form both call: each field's own bounds (the model fields' validators), a raw
query that is one read-only SELECT, then what the fields need of each other
(:func:`monitors.models.definition_errors`). Errors are a Django ValidationError naming the
field: the API answers it as JSON 400, the form shows it next to the field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from billing.plans import min_interval_for
from monitors.influxdb import queries
from monitors.models import Monitor, definition_errors, duration_text

# What definition_errors reads: an edit that leaves them out keeps the monitor's values.
_READS = (
    "group_by", "series_filter", "tags", "source", "raw_query", "measurement", "field",
    "aggregation", "percentile", "comparator", "critical", "critical_high", "warning",
    "warning_high", "recovery", "lights_on", "lights_off", "night_critical",
    "night_critical_high", "night_warning", "night_warning_high", "night_recovery",
)  # fmt: skip


def clean_raw_query(value: str) -> str:
    """A raw query stripped, or "" for none; raises ValidationError if it is not one
    read-only SELECT."""
    if not value.strip():
        return ""
    try:
        return queries.validate_raw(value)
    except queries.InvalidQuery as exc:
        raise ValidationError(str(exc)) from exc


def clean_definition(
    values: Mapping[str, Any],
    *,
    instance: Monitor | None = None,
    owner: AbstractBaseUser | None = None,
) -> dict[str, Any]:
    """``values`` (field name → parsed value, as a form or a serializer has them) checked as a
    whole; returns them cleaned. An edit (``instance``) is checked as the monitor will be after
    it. Raises ValidationError({field: [message, ...]}): each field's own bounds first, and
    only when those hold, the rules between fields and the interval ``owner``'s plan allows."""
    cleaned = dict(values)
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        try:
            cleaned[name] = _clean_field(name, value)
        except ValidationError as exc:
            errors[name] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    current = {name: getattr(instance, name) for name in _READS} if instance else {}
    joint = definition_errors({**current, **cleaned})
    if owner is not None and "interval" in cleaned:
        previous = instance.interval if instance is not None else None
        if message := interval_floor_error(owner, cleaned["interval"], previous=previous):
            joint["interval"] = message
    if joint:
        raise ValidationError({name: [message] for name, message in joint.items()})
    return cleaned


def _clean_field(name: str, value: Any) -> Any:
    if name == "raw_query":
        return clean_raw_query(value or "")
    try:
        field = Monitor._meta.get_field(name)
    except FieldDoesNotExist:
        return value
    if isinstance(field, models.Field) and not field.is_relation:
        field.run_validators(value)
    return value


def interval_floor_error(
    owner: AbstractBaseUser, interval: timedelta | None, *, previous: timedelta | None = None
) -> str | None:
    """Why ``interval`` is shorter than ``owner``'s plan allows (billing/plans.py), or None.
    An edit that keeps the interval it had (``previous``) is not refused: a monitor set up under
    a plan that allowed it keeps running when the plan changes."""
    if interval is None or interval == previous:
        return None
    floor = min_interval_for(owner)
    if interval >= floor:
        return None
    return f"must be at least {duration_text(floor)} on your plan"
