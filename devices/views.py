"""``POST /ingest`` through Django (the test client, ``runserver``); the web server answers
it in front of Django with the same service (devices/ingest/wsgi.py)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from devices.ingest import service


@csrf_exempt
@require_POST
def ingest(request: HttpRequest) -> JsonResponse:
    length = request.META.get("CONTENT_LENGTH") or ""
    limit = settings.INGEST_MAX_BODY_BYTES
    if length.isdigit() and int(length) > limit:
        answer = service.too_large()
    else:
        body = request.read(limit + 1)
        answer = service.ingest(
            body,
            header=lambda name: str(request.headers.get(name, "")),
            precision=request.GET.get("precision", "ns"),
        )
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
