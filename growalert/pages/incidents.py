"""Incident pages: the incident's timeline with its Acknowledge button, the one-click
acknowledgement page a notification links to (no sign-in: the signed link is the key; a GET
only shows what it would do, so mail scanners that fetch links acknowledge nothing), and the
escalation policies page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from growalert.pages import live as live_pages
from growalert.pages.errors import sentence
from growalert.pages.views import _owner
from monitors import escalation_policies, selectors, timeline
from monitors.models import (
    MAX_STEP_MINUTES,
    Channel,
    EscalationPolicy,
    EscalationStep,
    Incident,
)
from monitors.notify import acknowledge
from monitors.vocabulary import AckRoute
from shared.auth import acting_of, owner_of

STEP_ROWS = 4  # step rows on the page's form (the API takes up to MAX_STEPS)
WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


def _owned_incident(request: HttpRequest, incident_id: int) -> Incident:
    incidents = selectors.incident_list(owner=owner_of(request)).select_related("acknowledged_by")
    return get_object_or_404(incidents, pk=incident_id)


def _incident_context(request: HttpRequest, incident: Incident) -> dict[str, Any]:
    monitor_id = incident.monitor_id
    return {
        "incident": incident,
        "monitor": incident.monitor,
        "entries": timeline.incident_timeline(incident),
        "live": live_pages.page_attributes(
            request,
            owner_of(request).pk,
            reverse("pages:live-incident", args=[monitor_id, incident.pk]),
            live_pages.incident_page(monitor_id, incident.pk),
        ),
    }


@login_required
def incident_detail(request: HttpRequest, incident_id: int) -> HttpResponse:
    incident = _owned_incident(request, incident_id)
    return render(request, "pages/incident_detail.html", _incident_context(request, incident))


@login_required
def incident_live(request: HttpRequest, monitor_id: int, incident_id: int) -> HttpResponse:
    """An incident page's live answer (growalert/pages/live.py): it moves with its monitor."""
    incident = _owned_incident(request, incident_id)
    if incident.monitor_id != monitor_id:
        raise Http404("No such incident of that monitor.")
    return live_pages.answer(
        request,
        live_pages.incident_page(monitor_id, incident.pk),
        lambda: live_pages.render_without_charts(
            request, "pages/incident_detail.html", _incident_context(request, incident)
        ),
    )


@login_required
@require_POST
def incident_acknowledge(request: HttpRequest, incident_id: int) -> HttpResponseRedirect:
    incident = _owned_incident(request, incident_id)
    try:
        outcome = acknowledge.acknowledge(incident.pk, via=AckRoute.PAGE, by=request.user)
    except acknowledge.AlreadyResolved as exc:
        messages.error(request, sentence(str(exc)))
    else:
        _tell(request, outcome)
    return redirect("pages:incident", incident.pk)


def _tell(request: HttpRequest, outcome: acknowledge.Outcome) -> None:
    who = outcome.incident.acknowledged_by_text()
    if outcome.won:
        messages.success(request, "Acknowledged: escalation and repeats are stopped.")
    else:
        messages.info(request, f"Already acknowledged by {who}.")


def acknowledge_link(request: HttpRequest, token: str) -> HttpResponse:
    """GET: what the link acknowledges, with a button; POST (the button): acknowledges."""
    try:
        incident_id, channel_id = acknowledge.read_link(token)
        incident = Incident.objects.select_related("monitor", "acknowledged_by").get(pk=incident_id)
    except (acknowledge.BadLink, Incident.DoesNotExist) as exc:
        problem = str(exc) if isinstance(exc, acknowledge.BadLink) else "this link is not valid"
        return render(request, "pages/acknowledge.html", {"problem": sentence(problem)}, status=400)
    context: dict[str, Any] = {"incident": incident, "token": token}
    if request.method == "POST":
        channel = Channel.objects.filter(pk=channel_id).first()
        note = f"a link sent to {channel.name}" if channel else "a link"
        try:
            outcome = acknowledge.acknowledge(
                incident.pk, via=AckRoute.LINK, by=_owner_or_none(request, incident), note=note
            )
        except acknowledge.AlreadyResolved as exc:
            context["problem"] = sentence(str(exc))
            return render(request, "pages/acknowledge.html", context, status=409)
        context |= {"incident": outcome.incident, "won": outcome.won, "done": True}
    return render(request, "pages/acknowledge.html", context)


def _owner_or_none(request: HttpRequest, incident: Incident) -> Any:
    """The signed-in member of the incident's account, named as who acknowledged; anyone else
    with the link is not."""
    acting = acting_of(request)
    if acting is None or acting.owner_id != incident.monitor.owner_id:
        return None
    return acting.user


# ------------------------------------------------------------------ escalation policies


class MemberChoiceField(forms.ModelMultipleChoiceField[Any]):
    """Members of the account, shown by their login address (where they are told)."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.user.username} <{obj.user.email}>" if obj.user.email else obj.user.username


class PolicyForm(forms.Form):
    name = forms.CharField(max_length=100)
    repeat_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=1440,
        label="Repeat the last step every (minutes)",
        help_text="Until someone acknowledges or it resolves. Empty: the last step once.",
        error_messages={
            "min_value": "Repeat every 1 minute at least.",
            "max_value": "Repeat at least once a day (1440 minutes).",
            "invalid": "Enter a whole number of minutes, e.g. 15.",
        },
    )
    is_default = forms.BooleanField(
        required=False, label="Default policy for monitors that name none"
    )
    working_days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        initial=[0, 1, 2, 3, 4],
    )
    working_start = forms.TimeField(initial="08:00", widget=forms.TimeInput(attrs={"type": "time"}))
    working_end = forms.TimeField(initial="18:00", widget=forms.TimeInput(attrs={"type": "time"}))

    def __init__(self, *args: Any, owner: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        channels = Channel.objects.filter(owner_id=owner.pk)
        members = escalation_policies.account_members(owner)
        for row in range(STEP_ROWS):
            self.fields[f"step{row}_after"] = forms.IntegerField(
                required=row == 0,
                min_value=1,
                max_value=MAX_STEP_MINUTES,
                label=f"Step {row + 1}: after (minutes unacknowledged)",
                error_messages={
                    "required": "The first step needs its minutes, e.g. 10.",
                    "min_value": "Escalate after 1 minute at least.",
                    "max_value": "Escalate within 7 days (10080 minutes).",
                    "invalid": "Enter a whole number of minutes, e.g. 10.",
                },
            )
            self.fields[f"step{row}_hours"] = forms.ChoiceField(
                choices=EscalationStep.Hours.choices,
                label=f"Step {row + 1}: when",
                initial="always",
                required=False,
            )
            self.fields[f"step{row}_channels"] = forms.ModelMultipleChoiceField(
                queryset=channels,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=f"Step {row + 1}: notify",
            )
            self.fields[f"step{row}_members"] = MemberChoiceField(
                queryset=members,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label=f"Step {row + 1}: members (by email)",
                error_messages={
                    "invalid_choice": "Choose members of this account only.",
                    "invalid_pk_value": "Choose members of this account only.",
                },
            )

    def policy_input(self) -> escalation_policies.PolicyInput:
        data = self.cleaned_data
        steps = [
            escalation_policies.StepInput(
                after_minutes=data[f"step{row}_after"],
                hours=data[f"step{row}_hours"] or EscalationStep.Hours.ALWAYS,
                channels=list(data[f"step{row}_channels"]),
                members=[m.pk for m in data[f"step{row}_members"]],
            )
            for row in range(STEP_ROWS)
            if data.get(f"step{row}_after") is not None
        ]
        return escalation_policies.PolicyInput(
            name=data["name"],
            steps=steps,
            repeat_minutes=data.get("repeat_minutes"),
            is_default=data.get("is_default", False),
            working_days=sorted(data.get("working_days") or []),
            working_start=data["working_start"],
            working_end=data["working_end"],
        )


@login_required
def policy_list(request: HttpRequest) -> HttpResponse:
    owner = _owner(request)
    form = PolicyForm(request.POST or None, owner=owner)
    if request.method == "POST" and form.is_valid():
        try:
            policy = escalation_policies.policy_save(owner=owner, data=form.policy_input())
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, sentence(error))
        else:
            messages.success(request, f"Escalation policy “{policy.name}” saved.")
            return redirect("pages:escalation")
    policies = EscalationPolicy.objects.filter(owner=owner).prefetch_related(
        "steps__channels", "steps__members__user"
    )
    context = {"form": form, "policies": policies, "step_rows": range(STEP_ROWS)}
    return render(request, "pages/escalation.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def policy_delete(request: HttpRequest, policy_id: int) -> HttpResponseRedirect:
    policy = get_object_or_404(EscalationPolicy, owner_id=owner_of(request).pk, pk=policy_id)
    escalation_policies.policy_delete(policy=policy)
    messages.success(request, f"Escalation policy “{policy.name}” removed.")
    return redirect("pages:escalation")
