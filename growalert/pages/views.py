"""Dashboard and monitor pages: small function views over the monitors app's selectors and
services. Every lookup is scoped to the signed-in owner, so another customer's monitor is a 404.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing import selectors as billing_selectors
from billing.gating import has_active_service
from billing.models import Subscription
from billing.stripe_gateway import StripeGatewayError, is_configured
from growalert.health import operator
from growalert.pages import data, monitor_chart
from growalert.pages import live as live_pages
from growalert.pages.errors import sentence
from growalert.pages.forms import (
    MonitorForm,
    SeriesAcknowledgeForm,
    SeriesSilenceForm,
    SilenceForm,
)
from monitors import fleet, selectors, services
from monitors.evaluate import dry_run
from monitors.models import Monitor
from monitors.notify import acknowledge
from monitors.status_words import status_words
from monitors.vocabulary import STATUS_ORDER, AckRoute, status_label
from shared.auth import owner_of

logger = logging.getLogger(__name__)

DASHBOARD_CHART_HOURS = 1
MONITOR_CHART_HOURS = 24
DASHBOARD_CHARTS = 50  # beyond this many monitors the dashboard lists without charts


def _owner(request: HttpRequest) -> User:
    """The holder of the account the signed-in member acts in: its rows have this owner."""
    return owner_of(request)


def _owned_monitor(request: HttpRequest, monitor_id: int) -> Monitor:
    return get_object_or_404(selectors.monitor_list(owner=owner_of(request)), pk=monitor_id)


def _billing_state(request: HttpRequest) -> dict[str, Any]:
    customer = billing_selectors.customer_for(owner_of(request))
    subscription = customer.subscriptions.first() if customer else None
    return {
        "served": has_active_service(owner_of(request)),
        "subscription": subscription,
        # Right after paying, until Stripe's webhook lands (the dashboard refreshes itself).
        "confirming": "welcome" in request.GET
        and subscription is not None
        and subscription.status == Subscription.Status.INCOMPLETE,
    }


def home(request: HttpRequest) -> HttpResponse:
    """The dashboard for a signed-in user; for a visitor, what growalert does, what it costs
    (the prices /config serves) and the ways in."""
    if request.user.is_authenticated:
        return redirect("pages:dashboard")
    return render(request, "pages/home.html", {"plans": _plans(), "paid": is_configured()})


def _plans() -> list[dict[str, str]]:
    if not is_configured():
        return []
    try:
        catalog = billing_selectors.price_catalog()
    except StripeGatewayError as exc:
        logger.info("No prices for the home page: %s", exc)
        return []
    return [_plan(price) for price in catalog.as_list()]


def _plan(price: dict[str, Any]) -> dict[str, str]:
    product = price.get("product")
    name = price.get("nickname") or (product.get("name") if isinstance(product, dict) else "")
    recurring = price.get("recurring") or {}
    amount = f"{(price.get('unit_amount') or 0) / 100:.2f} {str(price.get('currency', '')).upper()}"
    every = f" a {recurring['interval']}" if recurring.get("interval") else " once"
    return {"name": str(name or "growalert"), "price": amount + every}


def _dashboard_context(request: HttpRequest, *, with_charts: bool) -> dict[str, Any]:
    monitors = list(selectors.monitor_list_by_urgency(owner=owner_of(request)))
    open_incidents = list(
        selectors.incident_list(owner=owner_of(request)).filter(resolved_at__isnull=True)
    )
    troubled = {i.monitor_id for i in open_incidents}
    # Monitors with an open incident first, then by urgency (the selector's order).
    monitors.sort(key=lambda m: m.pk not in troubled)
    charted = (
        data.monitor_charts(
            monitors[:DASHBOARD_CHARTS], hours=DASHBOARD_CHART_HOURS, width=300, height=90
        )
        if with_charts
        else {}
    )
    now = timezone.now()
    silences = selectors.active_silences(owner=owner_of(request), now=now)
    rows = [
        {
            "monitor": m,
            "words": status_words(m, now=now),
            "open": m.pk in troubled,
            "chart": charted.get(m.pk),
            "silence": selectors.silence_for(silences, m.pk),
            **_compact_grid(m),
        }
        for m in monitors
    ]
    context = {
        "rows": rows,
        "open_incidents": open_incidents,
        "live": live_pages.page_attributes(
            request, _owner(request).pk, reverse("pages:live-dashboard")
        ),
        **_billing_state(request),
    }
    if (
        request.user.is_staff
    ):  # the operator sees when monitoring is blind (growalert.health.operator)
        context["monitoring_episode"] = operator.episode_json()
    return context


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/dashboard.html", _dashboard_context(request, with_charts=True))


@login_required
def dashboard_live(request: HttpRequest) -> HttpResponse:
    """The dashboard's live answer (growalert/pages/live.py)."""
    return live_pages.answer(
        request,
        "dashboard",
        lambda: live_pages.render_without_charts(
            request, "pages/dashboard.html", _dashboard_context(request, with_charts=False)
        ),
    )


def _monitor_context(
    request: HttpRequest,
    monitor: Monitor,
    *,
    with_chart: bool,
    silence_form: SilenceForm | None = None,
) -> dict[str, Any]:
    incidents = list(selectors.incident_list(owner=owner_of(request), monitor_id=monitor.pk)[:50])
    notifications = selectors.notification_list(
        owner=owner_of(request), monitor_id=monitor.pk
    ).prefetch_related("delivery_attempts")[:50]
    # a fleet monitor shows its series instead: one chart of every series says nothing
    chart = monitor_chart.chart_for(request, monitor, incidents) if with_chart else ""
    now = timezone.now()
    silences = (
        selectors.silence_list(owner=owner_of(request))
        .filter(Q(monitor_id=monitor.pk) | Q(monitor__isnull=True))
        .filter(Q(ends_at__gt=now) | Q(daily=True))
    )
    return {
        "monitor": monitor,
        **_fleet_grid(monitor),
        "monitor_channels": list(monitor.channels.all()),
        "silence": selectors.silence_for(
            selectors.active_silences(owner=owner_of(request), now=now), monitor.pk
        ),
        "silences": list(silences.order_by("starts_at")[:20]),
        "silence_form": silence_form or SilenceForm(now=now),
        "now": now,
        "chart": chart,
        "chart_hours": MONITOR_CHART_HOURS,
        "incidents": incidents,
        "notifications": notifications,
        "live": live_pages.page_attributes(
            request,
            _owner(request).pk,
            reverse("pages:live-monitor", args=[monitor.pk]),
            live_pages.monitor_page(monitor.pk),
        ),
        **_billing_state(request),
    }


@login_required
def monitor_detail(
    request: HttpRequest, monitor_id: int, silence_form: SilenceForm | None = None
) -> HttpResponse:
    monitor = _owned_monitor(request, monitor_id)
    context = _monitor_context(request, monitor, with_chart=True, silence_form=silence_form)
    context["dry_run"] = request.session.pop(f"dry-run-{monitor.pk}", None)
    status = 400 if silence_form is not None and silence_form.errors else 200
    return render(request, "pages/monitor_detail.html", context, status=status)


@login_required
@require_POST
def monitor_silence(request: HttpRequest, monitor_id: int) -> HttpResponse:
    """Silences one monitor for a while (its checks go on; its notifications are held and
    logged), from its page."""
    monitor = _owned_monitor(request, monitor_id)
    form = SilenceForm(request.POST, now=timezone.now())
    if not form.is_valid():
        return monitor_detail(request, monitor_id, silence_form=form)
    silence = services.silence_create(
        owner=_owner(request),
        monitor=monitor,
        starts_at=form.cleaned_data["starts_at"],
        ends_at=form.cleaned_data["ends_at"],
        reason=form.cleaned_data["reason"],
        daily=form.cleaned_data["daily"],
    )
    starts, ends = timezone.localtime(silence.starts_at), timezone.localtime(silence.ends_at)
    if silence.daily:
        note = f"is silenced every day from {starts:%H:%M} to {ends:%H:%M}"
    else:
        note = f"is silenced until {ends:%Y-%m-%d %H:%M}"
    messages.success(request, f"“{monitor.name}” {note}.")
    return redirect(reverse("pages:monitor", args=[monitor.pk]) + "#silences")


@login_required
@require_POST
def series_silence(request: HttpRequest, monitor_id: int) -> HttpResponseRedirect:
    """Silences one series of a fleet monitor (from its grid): it keeps being evaluated and
    changes state, quietly; the others notify as before."""
    monitor = _owned_monitor(request, monitor_id)
    form = SeriesSilenceForm(request.POST)
    target = reverse("pages:monitor", args=[monitor.pk]) + "#series"
    if not form.is_valid() or not monitor.is_fleet:
        messages.error(request, "Choose a series and how long to silence it.")
        return redirect(target)
    key = form.cleaned_data["series_key"]
    row = selectors.series_list(monitor=monitor).filter(key=key).first()
    if row is None:
        messages.error(request, "That series is not one of this monitor's (any more).")
        return redirect(target)
    now = timezone.now()
    silence = services.silence_create(
        owner=_owner(request),
        monitor=monitor,
        series_key=key,
        starts_at=now,
        ends_at=now + SeriesSilenceForm.DURATIONS[form.cleaned_data["duration"]],
    )
    label = fleet.series_label(row.tags, monitor.group_by) or key
    ends = timezone.localtime(silence.ends_at)
    messages.success(request, f"Series “{label}” is silenced until {ends:%Y-%m-%d %H:%M}.")
    return redirect(target)


@login_required
@require_POST
def series_acknowledge(request: HttpRequest, monitor_id: int) -> HttpResponseRedirect:
    """Acknowledges one series' open incident (from its grid), as the incident page would:
    its escalation and repeats stop; the other series are untouched."""
    monitor = _owned_monitor(request, monitor_id)
    form = SeriesAcknowledgeForm(request.POST)
    target = reverse("pages:monitor", args=[monitor.pk]) + "#series"
    key = form.cleaned_data["series_key"] if form.is_valid() else ""
    incident = selectors.open_series_incidents(monitor=monitor).get(key)
    if incident is None:
        messages.error(request, "That series has no open incident to acknowledge (any more).")
        return redirect(target)
    try:
        outcome = acknowledge.acknowledge(incident.pk, via=AckRoute.PAGE, by=request.user)
    except acknowledge.AlreadyResolved as exc:
        messages.error(request, sentence(str(exc)))
        return redirect(target)
    row = selectors.series_list(monitor=monitor).filter(key=key).first()
    label = fleet.series_label(row.tags, monitor.group_by) if row is not None else key
    if outcome.won:
        messages.success(request, f"Acknowledged “{label}”: its escalation and repeats stop.")
    else:
        who = outcome.incident.acknowledged_by_text()
        messages.info(request, f"“{label}” was already acknowledged by {who}.")
    return redirect(target)


@login_required
@require_POST
def silence_end(request: HttpRequest, silence_id: int) -> HttpResponseRedirect:
    silence = get_object_or_404(selectors.silence_list(owner=owner_of(request)), pk=silence_id)
    services.silence_end(silence=silence)
    messages.success(
        request,
        "Silence ended: notifications resume at the next check, starting with what changed "
        "while it lasted.",
    )
    if silence.monitor_id is not None:
        return redirect(reverse("pages:monitor", args=[silence.monitor_id]) + "#silences")
    return redirect("pages:dashboard")


FLEET_GRID_SIZE = 500  # series shown on a fleet monitor's page (the API lists them all)


def _fleet_grid(monitor: Monitor) -> dict[str, Any]:
    """A fleet monitor's series, worst first, as its page shows them."""
    if not monitor.is_fleet:
        return {}
    rows = selectors.series_list(monitor=monitor)
    silenced = selectors.silenced_series_keys(monitor=monitor)
    incidents = selectors.open_series_incidents(monitor=monitor)
    shown = [
        {
            "key": row.key,
            "label": fleet.series_label(row.tags, monitor.group_by) or row.key,
            "status": row.status,
            "words": status_label(row.status),
            "value": row.last_value,
            "reason": row.status_reason,
            "silenced": row.key in silenced,
            "incident": incidents.get(row.key),
        }
        for row in rows[:FLEET_GRID_SIZE]
    ]
    counts = Counter(rows.values_list("status", flat=True))
    summary = [(status_label(s), counts[s]) for s in STATUS_ORDER if counts[s]]
    return {"series": shown, "series_total": sum(counts.values()), "series_counts": summary}


DASHBOARD_SERIES = 12  # a fleet monitor's worst series on its dashboard card


def _compact_grid(monitor: Monitor) -> dict[str, Any]:
    """A fleet monitor's worst series for its dashboard card (one query: a card is small)."""
    if not monitor.is_fleet:
        return {}
    rows = selectors.series_list(monitor=monitor)
    shown = [
        {
            "key": row.key,
            "label": fleet.series_label(row.tags, monitor.group_by) or row.key,
            "status": row.status,
            "words": status_label(row.status),
            "value": row.last_value,
        }
        for row in rows[:DASHBOARD_SERIES]
    ]
    return {"series": shown}


@login_required
def monitor_live(request: HttpRequest, monitor_id: int) -> HttpResponse:
    """A monitor page's live answer (growalert/pages/live.py)."""
    monitor = _owned_monitor(request, monitor_id)
    return live_pages.answer(
        request,
        live_pages.monitor_page(monitor.pk),
        lambda: live_pages.render_without_charts(
            request,
            "pages/monitor_detail.html",
            _monitor_context(request, monitor, with_chart=False),
        ),
    )


@login_required
def monitor_edit(request: HttpRequest, monitor_id: int | None = None) -> HttpResponse:
    monitor = _owned_monitor(request, monitor_id) if monitor_id else None
    owner = _owner(request)
    form = MonitorForm(request.POST or None, instance=monitor, owner=owner)
    served = has_active_service(owner)
    if request.method == "POST" and served and form.is_valid():
        fields = dict(form.validated)
        channels = fields.pop("channels", [])
        if monitor is None:
            monitor = services.monitor_create(owner=owner, channels=channels, **fields)
            messages.success(request, f"Monitor “{monitor.name}” created.")
        else:
            monitor = services.monitor_update(monitor=monitor, channels=channels, **fields)
            messages.success(request, f"Monitor “{monitor.name}” saved.")
        return redirect("pages:monitor", monitor_id=monitor.pk)
    context = {
        "form": form,
        "monitor": monitor,
        "served": served,
        "has_sources": selectors.source_list(owner=owner).exists(),
    }
    return render(request, "pages/monitor_form.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def monitor_toggle(request: HttpRequest, monitor_id: int) -> HttpResponseRedirect:
    monitor = _owned_monitor(request, monitor_id)
    if not has_active_service(owner_of(request)):
        messages.error(request, "An active subscription is required to change monitors.")
    else:
        services.monitor_set_enabled(monitor=monitor, enabled=not monitor.enabled)
        messages.success(request, "Monitor resumed." if monitor.enabled else "Monitor paused.")
    return redirect("pages:monitor", monitor_id=monitor.pk)


@login_required
@require_POST
def monitor_test(request: HttpRequest, monitor_id: int) -> HttpResponseRedirect:
    monitor = _owned_monitor(request, monitor_id)
    if not has_active_service(owner_of(request)):
        messages.error(request, "An active subscription is required to test monitors.")
    else:
        request.session[f"dry-run-{monitor.pk}"] = dry_run.dry_run(monitor).as_dict()
    return redirect(reverse("pages:monitor", args=[monitor.pk]) + "#test-result")


@login_required
@require_POST
def monitor_delete(request: HttpRequest, monitor_id: int) -> HttpResponseRedirect:
    monitor = _owned_monitor(request, monitor_id)
    if monitor.device_id is not None:
        messages.error(request, services.HEALTH_MONITOR_KEPT.capitalize() + ".")
        return redirect("pages:monitor", monitor_id=monitor.pk)
    services.monitor_delete(monitor=monitor)
    messages.success(request, f"Monitor “{monitor.name}” deleted.")
    return redirect("pages:dashboard")
