"""The channels page: add, verify (SMS), send a test, see and retry failed deliveries (dead
letters), remove. Writes go through the channel service (monitors/notify/channels.py), as the
API's do, so the page and the API accept exactly the same channels."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from growalert.pages.errors import explained
from growalert.pages.forms import ChannelForm, VerifyForm
from growalert.pages.views import _owner
from monitors.models import Channel, Notification
from monitors.notify import channels as channel_services
from monitors.notify import selectors as notify_selectors
from monitors.notify import services
from shared.auth import owner_of

DEAD_LETTERS_SHOWN = 20
# What "Send to" takes, for each kind (static/js/channel-form.js shows the chosen kind's).
KIND_HELP = [
    ("email", "Email", "One or more email addresses, separated by commas (at most 10)."),
    (
        "webhook",
        "Webhook",
        "An http(s) URL on a public address; growalert POSTs the alert as signed JSON.",
    ),
    (
        "slack",
        "Slack",
        "A Slack incoming-webhook URL, https://hooks.slack.com/services/… (Slack: Apps → "
        "Incoming Webhooks).",
    ),
    (
        "sms",
        "SMS",
        "A phone number in international form, e.g. +15551234567; it is sent a code to confirm.",
    ),
]


def _owned_channel(request: HttpRequest, channel_id: int) -> Channel:
    return get_object_or_404(notify_selectors.channel_list(owner=owner_of(request)), pk=channel_id)


@login_required
def channel_list(request: HttpRequest) -> HttpResponse:
    form = ChannelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            channel = channel_services.channel_create(
                owner=_owner(request), **form.channel_fields()
            )
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                target = "target" if name == "config" else name if name in form.fields else None
                for error in errors:
                    form.add_error(
                        target, explained(error, setting="WEBHOOKS_ALLOW_PRIVATE_ADDRESSES")
                    )
        else:
            note = (
                " Send it a verification code before it receives alerts."
                if not channel.verified
                else ""
            )
            messages.success(request, f"Channel “{channel.name}” added.{note}")
            return redirect("pages:channels")
    channels = list(
        notify_selectors.channels_with_dead_letters(
            notify_selectors.channel_list(owner=owner_of(request))
        )
    )
    context = {
        "form": form,
        "channels": channels,
        "dead_letters": [
            (channel, notify_selectors.dead_letters(channel=channel)[:DEAD_LETTERS_SHOWN])
            for channel in channels
            if channel.dead_letter_count  # type: ignore[attr-defined]
        ],
        "verify_form": VerifyForm(),
        "kind_help": KIND_HELP,
    }
    return render(request, "pages/channels.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def channel_device_health(request: HttpRequest, channel_id: int) -> HttpResponseRedirect:
    """Switches device health alerts on or off for the channel (all devices' health monitors)."""
    channel = _owned_channel(request, channel_id)
    on = request.POST.get("on") == "1"
    channel_services.channel_update(channel=channel, device_health=on)
    state = "now receives" if on else "no longer receives"
    messages.success(request, f"“{channel.name}” {state} device health alerts.")
    return redirect("pages:channels")


@login_required
@require_POST
def channel_test(request: HttpRequest, channel_id: int) -> HttpResponseRedirect:
    channel = _owned_channel(request, channel_id)
    notification = services.send_test(channel)
    if notification.status == Notification.DeliveryStatus.SENT:
        messages.success(request, f"Test notification sent to “{channel.name}”.")
    else:
        error = notification.last_error or notification.get_status_display()
        messages.error(request, f"The test to “{channel.name}” failed: {error}")
    if request.POST.get("next") == "channel":  # sent from the channel's own page
        return redirect("pages:channel", channel.pk)
    return redirect("pages:channels")


@login_required
@require_POST
def channel_send_verification(request: HttpRequest, channel_id: int) -> HttpResponseRedirect:
    channel = _owned_channel(request, channel_id)
    try:
        services.start_verification(channel)
    except services.VerificationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"A 6-digit code was sent to {channel.config.get('phone')}.")
    return redirect("pages:channels")


@login_required
@require_POST
def channel_verify(request: HttpRequest, channel_id: int) -> HttpResponseRedirect:
    channel = _owned_channel(request, channel_id)
    form = VerifyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter the 6-digit code from the text message.")
        return redirect("pages:channels")
    try:
        services.confirm_verification(channel, form.cleaned_data["code"])
    except services.VerificationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"“{channel.name}” is verified and will receive alerts.")
    return redirect("pages:channels")


@login_required
@require_POST
def channel_retry(request: HttpRequest, channel_id: int) -> HttpResponseRedirect:
    """Sends the channel's dead letters again."""
    channel = _owned_channel(request, channel_id)
    try:
        retried, remaining = services.retry_dead_letters(channel)
    except services.RetryError as exc:
        messages.error(request, f"Cannot retry “{channel.name}”: {exc}.")
    else:
        more = f" {remaining} more are waiting: retry again." if remaining else ""
        note = f"{retried} failed notifications to “{channel.name}” are being sent again."
        messages.success(request, note + more)
    return redirect("pages:channels")


@login_required
@require_POST
def channel_delete(request: HttpRequest, channel_id: int) -> HttpResponseRedirect:
    channel = _owned_channel(request, channel_id)
    try:
        channel_services.channel_delete(channel=channel)
    except ValidationError:
        messages.error(request, f"“{channel.name}” stays: {channel_services.PERSONAL}.")
    else:
        messages.success(request, f"Channel “{channel.name}” removed.")
    return redirect("pages:channels")
