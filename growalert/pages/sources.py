"""The sources page: the InfluxDB servers monitors read from. Add one, check that it answers
(and that its credentials work), have its InfluxDB push its writes (the subscription to run is
shown once), remove it. Writes go through the source service
(monitors/services.py), as the API's do, so the page and the API accept the same sources;
secrets are write-only on both."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from growalert.pages.errors import explained
from growalert.pages.forms import SourceForm
from growalert.pages.views import _owner
from monitors import selectors, services
from monitors.models import Source
from shared.auth import owner_of

NEW_PUSH = "new-source-push"


def _owned_source(request: HttpRequest, source_id: int) -> Source:
    return get_object_or_404(selectors.source_list(owner=owner_of(request)), pk=source_id)


@login_required
def source_list(request: HttpRequest) -> HttpResponse:
    form = SourceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            source = services.source_create(owner=_owner(request), **form.source_fields())
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                target = name if name in form.fields else None
                for error in errors:
                    form.add_error(
                        target, explained(error, setting="SOURCES_ALLOW_PRIVATE_ADDRESSES")
                    )
        else:
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
    context = {
        "form": form,
        "sources": selectors.source_list(owner=owner_of(request)),
        "new_push": request.session.pop(NEW_PUSH, None),
    }
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


@login_required
@require_POST
def source_push(request: HttpRequest, source_id: int) -> HttpResponseRedirect:
    """Turns the push on (a new key: the subscription to run is shown once) or off."""
    source = _owned_source(request, source_id)
    if request.POST.get("action") == "stop":
        services.source_push_disable(source=source)
        messages.success(request, f"“{source.name}” no longer pushes: its monitors are polled.")
        return redirect("pages:sources")
    try:
        setup = services.source_push_enable(source=source)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("pages:sources")
    request.session[NEW_PUSH] = {"source": source.name, "subscription": setup.subscription}
    messages.success(
        request, f"Run the subscription below on “{source.name}”'s InfluxDB: it is shown once."
    )
    return redirect("pages:sources")
