"""Template filters over monitors.display: ``{% load display %}``, then
``{{ value|shown:monitor }}`` ("22.7 °C"), ``{{ timedelta|duration }}`` ("1 h 20 min"),
``{{ moment|clock }}`` ("14:32") and ``{{ monitor|status_words }}``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone

from monitors import display
from monitors import status_words as words
from monitors.models import Monitor
from monitors.models import pending_period as period_of

register = template.Library()


@register.filter
def shown(value: float | None, monitor: Monitor) -> str:
    return monitor.show(value)


@register.filter
def duration(value: timedelta | float | None) -> str:
    return display.duration(value)


@register.filter
def since(moment: datetime | None, end: datetime | None = None) -> str:
    """How long from ``moment`` to ``end`` (or now): "12 min"."""
    if moment is None:
        return ""
    return display.duration((end or timezone.now()) - moment)


@register.filter
def remaining(moment: datetime | None) -> str:
    """How long until ``moment``: "1 h 20 min"."""
    if moment is None:
        return ""
    return display.duration(max(timedelta(0), moment - timezone.now()))


@register.filter
def clock(moment: datetime | None) -> str:
    return display.clock(moment)


@register.filter
def pending_period(monitor: Monitor) -> timedelta:
    """How long the monitor fails before it fires (its pending_for checks, as a duration)."""
    return period_of(monitor.pending_for, monitor.interval)


@register.filter
def status_words(monitor: Monitor) -> words.StatusWords:
    return words.status_words(monitor)


@register.filter
def threshold_words(monitor: Monitor) -> str:
    return words.threshold_words(monitor)
