"""The sources page: the InfluxDB servers monitors read from. Add one, check that it answers
(and that its credentials work), remove it. Validation is the sources API's serializer, so the
page and the API accept the same sources; secrets are write-only on both."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from growalert.pages.forms import SourceForm
from growalert.pages.views import _user
from monitors import selectors, services
from monitors.models import Source
from monitors.serializers import SourceSerializer


def _owned_source(request: HttpRequest, source_id: int) -> Source:
    return get_object_or_404(selectors.source_list(owner=request.user), pk=source_id)


@login_required
def source_list(request: HttpRequest) -> HttpResponse:
    form = SourceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        serializer = SourceSerializer(data=form.api_payload(), context={"request": request})
        errors: dict[str, Any] = {}
        if serializer.is_valid():
            try:
                source = services.source_create(owner=_user(request), **serializer.validated_data)
            except ValidationError as exc:  # the service's own checks (the URL guard)
                errors = exc.message_dict
        else:
            errors = dict(serializer.errors)
        if not errors:
            services.source_check(source=source)
            if source.last_check_ok:
                messages.success(request, f"Source “{source.name}” added; it answers.")
            else:
                messages.warning(
                    request,
                    f"Source “{source.name}” added, but it does not answer yet: "
                    f"{source.last_check_error}",
                )
            return redirect("pages:sources")
        for name, messages_ in errors.items():
            target = name if name in form.fields else None
            for error in messages_ if isinstance(messages_, list) else [messages_]:
                form.add_error(target, str(error))
    context = {"form": form, "sources": selectors.source_list(owner=request.user)}
    return render(request, "pages/sources.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def source_check(request: HttpRequest, source_id: int) -> HttpResponseRedirect:
    source = services.source_check(source=_owned_source(request, source_id))
    if source.last_check_ok:
        messages.success(request, f"“{source.name}” answers (InfluxDB {source.server_version}).")
    else:
        messages.error(request, f"“{source.name}” does not answer: {source.last_check_error}")
    return redirect("pages:sources")


@login_required
@require_POST
def source_delete(request: HttpRequest, source_id: int) -> HttpResponseRedirect:
    source = _owned_source(request, source_id)
    try:
        source.delete()
    except ProtectedError:
        messages.error(request, f"“{source.name}” is used by monitors: delete or move them first.")
    else:
        messages.success(request, f"Source “{source.name}” removed.")
    return redirect("pages:sources")
