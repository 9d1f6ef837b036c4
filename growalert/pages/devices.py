"""The devices pages: the account's GRO-01s (register one by claim code or ingest key, or add
one and get its key), and a device's page with its status, latest values and a chart."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from devices import readings, selectors, services
from devices.models import MAX_NAME, MAX_PLACE, Device
from growalert.pages import charts
from growalert.pages.errors import sentence
from growalert.pages.views import _owner
from shared.auth import owner_of

NEW_KEY = "new-device-key"
CHART_HOURS = 6


class RegisterForm(forms.Form):
    code = forms.CharField(
        label="Claim code or ingest key",
        max_length=200,
        help_text="The claim code printed on the device (ABCD-EFGH-JKLM), or its ingest key.",
    )
    name = forms.CharField(max_length=MAX_NAME, required=False)
    greenhouse = forms.CharField(max_length=MAX_PLACE, required=False)
    zone = forms.CharField(max_length=MAX_PLACE, required=False)


class DeviceForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME)
    greenhouse = forms.CharField(max_length=MAX_PLACE, required=False)
    zone = forms.CharField(max_length=MAX_PLACE, required=False)


def _owned(request: HttpRequest, device_id: int) -> Device:
    return get_object_or_404(selectors.device_list(owner=owner_of(request)), pk=device_id)


def _apply_errors(form: forms.Form, exc: ValidationError) -> None:
    for name, errors in exc.message_dict.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, sentence(error))


@login_required
def device_list(request: HttpRequest) -> HttpResponse:
    action = request.POST.get("action") if request.method == "POST" else None
    register = RegisterForm(request.POST if action == "register" else None, prefix="register")
    add = DeviceForm(request.POST if action == "add" else None, prefix="add")
    if action == "register" and register.is_valid():
        try:
            device = services.device_register(owner=_owner(request), **register.cleaned_data)
        except ValidationError as exc:
            _apply_errors(register, exc)
        else:
            messages.success(request, f"“{device.name}” is registered to your account.")
            return redirect("pages:device", device_id=device.pk)
    if action == "add" and add.is_valid():
        try:
            device, key = services.device_add(owner=_owner(request), **add.cleaned_data)
        except ValidationError as exc:
            _apply_errors(add, exc)
        else:
            request.session[NEW_KEY] = key
            messages.success(request, "Device added. Copy its ingest key now: it is shown once.")
            return redirect("pages:device", device_id=device.pk)
    context = {
        "devices": selectors.device_list(owner=owner_of(request)).order_by(
            "greenhouse", "zone", "name"
        ),
        "register": register,
        "add": add,
    }
    status = 400 if register.errors or add.errors else 200
    return render(request, "pages/devices.html", context, status=status)


@login_required
def device_detail(request: HttpRequest, device_id: int) -> HttpResponse:
    device = _owned(request, device_id)
    form = DeviceForm(
        request.POST if request.method == "POST" else None,
        initial={"name": device.name, "greenhouse": device.greenhouse, "zone": device.zone},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.device_update(device=device, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Device saved.")
            return redirect("pages:device", device_id=device.pk)
    latest = readings.latest(device)
    numeric = [
        (item.measurement, name)
        for item in latest
        for name, value in item.values.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    chosen = (request.GET.get("measurement", ""), request.GET.get("field", ""))
    if chosen not in numeric:
        chosen = numeric[0] if numeric else ("", "")
    chart = charts.render(
        charts.Chart(
            points=readings.history(
                device, measurement=chosen[0], field=chosen[1], hours=CHART_HOURS
            )
            if chosen[1]
            else [],
            title=f"{device.name}: {chosen[1] or 'no readings'}, last {CHART_HOURS} h",
        )
    )
    context = {
        "device": device,
        "form": form,
        "latest": latest,
        "numeric": numeric,
        "chosen": chosen,
        "chart": chart,
        "chart_hours": CHART_HOURS,
        "new_key": request.session.pop(NEW_KEY, None),
    }
    return render(request, "pages/device_detail.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def device_rotate_key(request: HttpRequest, device_id: int) -> HttpResponseRedirect:
    device = _owned(request, device_id)
    request.session[NEW_KEY] = services.device_rotate_ingest_key(device=device)
    messages.success(
        request, "New ingest key made: copy it now. The old key stops working within seconds."
    )
    return redirect("pages:device", device_id=device.pk)
