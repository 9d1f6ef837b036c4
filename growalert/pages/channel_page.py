"""One channel's page: what it sends to, whether new monitors start with it, and its message
templates (subject and body with the alert's variables, monitors/notify/templating.py),
previewed with the account's latest real alert (a sample when there is none yet).

"Preview" fills the templates being typed without saving them; "Save" checks and stores them
through the channel service, as ``PATCH /channels/<id>`` does."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from growalert.pages.errors import sentence
from monitors.evaluate import time_zones
from monitors.models import BODY_TEMPLATE_LENGTH, SUBJECT_TEMPLATE_LENGTH, Channel
from monitors.notify import channels as channel_services
from monitors.notify import messages as words
from monitors.notify import selectors as notify_selectors
from monitors.notify import slack, sms, templating, webhook
from shared.auth import owner_of
from shared.links import absolute_url


class MessageForm(forms.Form):
    subject_template = forms.CharField(
        label="Subject",
        required=False,
        max_length=SUBJECT_TEMPLATE_LENGTH,
        help_text="Empty: the default, e.g. “[FIRING] Bench 3 soil”. Email subject, Slack "
        "header, first words of a text.",
        widget=forms.TextInput(attrs={"placeholder": "{event}: {monitor} is {value}"}),
    )
    body_template = forms.CharField(
        label="Body",
        required=False,
        max_length=BODY_TEMPLATE_LENGTH,
        help_text="Empty: the default message. Takes the place of the headline and the facts; "
        "the chart and the link stay.",
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "{monitor} is {value}, {threshold} for {for}."}
        ),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            channel_services.check_templates(cleaned)
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                for error in errors:
                    self.add_error(name, sentence(error))
        return cleaned


def _owned(request: HttpRequest, channel_id: int) -> Channel:
    return get_object_or_404(notify_selectors.channel_list(owner=owner_of(request)), pk=channel_id)


def preview(channel: Channel, payload: dict[str, Any], subject: str, body: str) -> dict[str, str]:
    """What the channel would send for ``payload`` with these templates, as its kind shows
    it: the subject (header) and the text; the webhook's JSON ``message``."""
    draft = Channel(kind=channel.kind, subject_template=subject, body_template=body)
    if channel.kind == Channel.Kind.SLACK:
        own = slack.own_words(draft, payload)
    else:
        own = templating.render_for(draft, payload)
    shown = {
        "subject": own.subject or words.subject(payload),
        "body": own.body or words.headline(payload),
    }
    if channel.kind == Channel.Kind.SMS:
        shown["body"] = sms.body(payload, own)
        shown["subject"] = ""
    if channel.kind == Channel.Kind.WEBHOOK:
        sent = webhook.document(draft, payload, idempotency_key="preview")
        shown["json"] = json.dumps(sent.get("message"), indent=2, ensure_ascii=False)
    return shown


@login_required
def channel_detail(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = _owned(request, channel_id)
    form = MessageForm(
        request.POST or None,
        initial={
            "subject_template": channel.subject_template,
            "body_template": channel.body_template,
        },
    )
    saving = request.method == "POST" and request.POST.get("action") == "save"
    if request.method == "POST" and form.is_valid() and saving:
        channel_services.channel_update(
            channel=channel,
            subject_template=form.cleaned_data["subject_template"],
            body_template=form.cleaned_data["body_template"],
        )
        messages.success(request, f"The messages of “{channel.name}” are saved.")
        return redirect(reverse("pages:channel", args=[channel.pk]) + "#messages")
    real = notify_selectors.latest_alert_payload(owner=owner_of(request))
    payload = real or templating.sample_payload(
        absolute_url("/").rstrip("/"), time_zone=time_zones.of_owner(channel.owner_id)
    )
    if form.is_bound and not form.errors:
        subject, body = form.cleaned_data["subject_template"], form.cleaned_data["body_template"]
    else:
        subject, body = channel.subject_template, channel.body_template
    context = {
        "channel": channel,
        "form": form,
        "preview": preview(channel, payload, subject, body),
        "preview_from": _about(payload) if real else "",
        "variables": [(f"{{{name}}}", text) for name, text in templating.VARIABLES.items()],
    }
    return render(request, "pages/channel_detail.html", context, status=400 if form.errors else 200)


def _about(payload: dict[str, Any]) -> str:
    """ "Bench 3 soil — FIRING, 2026-12-02 01:27 UTC": which alert the preview uses."""
    values = templating.variables(payload)
    return f"{values['monitor']} — {values['event']}, {values['time']}"


@login_required
@require_POST
def channel_default(request: HttpRequest, channel_id: int) -> HttpResponseRedirect:
    """Marks the channel as a default for new monitors, or not."""
    channel = _owned(request, channel_id)
    on = request.POST.get("on") == "1"
    channel_services.channel_update(channel=channel, default_for_new_monitors=on)
    state = "is now ticked" if on else "is no longer ticked"
    messages.success(request, f"“{channel.name}” {state} for new monitors.")
    back = request.POST.get("next")
    if back == "channel":
        return redirect("pages:channel", channel.pk)
    return redirect("pages:channels")
