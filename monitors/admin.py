"""Staff manage every monitor, source and channel here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from monitors import services
from monitors.evaluate import dry_run
from monitors.models import (
    Channel,
    Escalation,
    EscalationPolicy,
    EscalationStep,
    Incident,
    Monitor,
    Notification,
    Silence,
    Source,
)


class SourceForm(forms.ModelForm[Source]):
    # InfluxDB listens on plain http by default; a URL typed without a scheme means http.
    url = forms.URLField(max_length=500, assume_scheme="http", help_text=Source.url.field.help_text)
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Password or token. Leave empty to keep the stored one.",
    )

    class Meta:
        model = Source
        fields = [
            "owner", "name", "url", "database", "org", "flavor", "auth_scheme", "username",
            "timeout_seconds",
        ]  # fmt: skip


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin[Source]):
    form = SourceForm
    list_display = ["name", "owner", "url", "database", "flavor", "auth_scheme", "last_check_ok"]
    list_filter = ["flavor", "auth_scheme", "last_check_ok"]
    search_fields = ["name", "url", "database", "owner__username"]
    readonly_fields = [
        "last_checked_at", "last_check_ok", "last_check_error", "server_version", "push_key_prefix",
    ]  # fmt: skip
    actions = ["check_now"]

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        if form.cleaned_data.get("secret"):
            obj.secret = form.cleaned_data["secret"]
        super().save_model(request, obj, form, change)

    @admin.action(description="Check that the selected sources are reachable")
    def check_now(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            services.source_check(source=source)
            level = messages.SUCCESS if source.last_check_ok else messages.ERROR
            detail = source.server_version if source.last_check_ok else source.last_check_error
            self.message_user(request, f"{source}: {detail}", level)


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin[Channel]):
    list_display = ["name", "owner", "kind", "enabled", "verified", "disabled_reason"]
    list_filter = ["kind", "enabled", "verified"]
    search_fields = ["name", "owner__username"]
    exclude = ["secret_ciphertext"]


class IncidentInline(admin.TabularInline[Incident, Monitor]):
    model = Incident
    extra = 0
    can_delete = False
    fields = ["severity", "opened_at", "resolved_at", "opened_value", "peak_value", "summary"]
    readonly_fields = [
        "severity",
        "opened_at",
        "resolved_at",
        "opened_value",
        "peak_value",
        "summary",
    ]
    ordering = ["-opened_at"]
    max_num = 0
    show_change_link = True


@admin.register(Monitor)
class MonitorAdmin(admin.ModelAdmin[Monitor]):
    list_display = [
        "name", "owner", "status", "value_shown", "last_evaluated_at", "status_changed_at",
        "enabled", "source",
    ]  # fmt: skip
    list_filter = ["status", "enabled", "aggregation", "comparator", "source"]
    search_fields = ["name", "measurement", "field", "owner__username", "source__name"]
    list_select_related = ["owner", "source"]
    readonly_fields = [
        "status", "status_reason", "status_changed_at", "last_value", "last_evaluated_at",
        "next_due_at", "state", "created_at", "updated_at",
    ]  # fmt: skip
    filter_horizontal = ["channels"]
    inlines = [IncidentInline]
    actions = ["pause", "resume", "test_now"]

    @admin.display(description="last value", ordering="last_value")
    def value_shown(self, obj: Monitor) -> str:
        return obj.show(obj.last_value)

    def save_model(
        self, request: HttpRequest, obj: Monitor, form: forms.ModelForm[Monitor], change: bool
    ) -> None:
        """An edit goes through the service like any other: only the changed fields are
        written, and unchecking "enabled" pauses (ending an open incident) as the API does."""
        if not change:
            super().save_model(request, obj, form, change)
            return
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        changed.pop("channels", None)  # many-to-many: saved by save_related
        services.monitor_update(monitor=obj, **changed)

    @admin.action(description="Pause the selected monitors")
    def pause(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        for monitor in queryset:
            services.monitor_set_enabled(monitor=monitor, enabled=False)
        self.message_user(request, f"Paused {queryset.count()} monitor(s).", messages.SUCCESS)

    @admin.action(description="Resume the selected monitors")
    def resume(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        for monitor in queryset:
            services.monitor_set_enabled(monitor=monitor, enabled=True)
        self.message_user(request, f"Resumed {queryset.count()} monitor(s).", messages.SUCCESS)

    @admin.action(description="Test the selected monitors now (no notifications)")
    def test_now(self, request: HttpRequest, queryset: QuerySet[Monitor]) -> None:
        for monitor in queryset.select_related("source"):
            result = dry_run.dry_run(monitor)
            self.message_user(
                request,
                f"{monitor}: would be {result.status} — {result.reason}",
                messages.WARNING if result.status != "ok" else messages.SUCCESS,
            )


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin[Incident]):
    list_display = [
        "monitor", "severity", "opened_at", "resolved_at", "acknowledged_at", "acknowledged_via",
        "peak_value",
    ]  # fmt: skip
    list_filter = [
        "severity",
        ("resolved_at", admin.EmptyFieldListFilter),
        ("acknowledged_at", admin.EmptyFieldListFilter),
    ]
    readonly_fields = [
        "acknowledged_at",
        "acknowledged_by",
        "acknowledged_via",
        "acknowledged_note",
    ]
    search_fields = ["monitor__name", "summary"]
    list_select_related = ["monitor"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin[Notification]):
    list_display = ["created_at", "event", "monitor", "channel", "status", "attempts", "sent_at"]
    list_filter = ["status", "event", "channel__kind"]
    search_fields = ["monitor__name", "channel__name", "idempotency_key"]
    list_select_related = ["monitor", "channel"]
    readonly_fields = [f.name for f in Notification._meta.fields]


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin[Silence]):
    list_display = ["__str__", "owner", "monitor", "starts_at", "ends_at", "reason"]
    search_fields = ["reason", "monitor__name", "owner__username"]


class EscalationStepInline(admin.TabularInline[EscalationStep, EscalationPolicy]):
    model = EscalationStep
    extra = 0
    filter_horizontal = ["channels"]


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin[EscalationPolicy]):
    list_display = ["name", "owner", "is_default", "repeat_minutes"]
    search_fields = ["name", "owner__username"]
    inlines = [EscalationStepInline]


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin[Escalation]):
    list_display = ["incident", "policy", "next_step", "repeats", "due_at", "finished_at"]
    list_filter = [("finished_at", admin.EmptyFieldListFilter)]
    readonly_fields = [f.name for f in Escalation._meta.fields]
