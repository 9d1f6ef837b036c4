"""``POST /ingest`` and ``POST /influx/write`` through Django (the test client, ``runserver``);
the web server answers them in front of Django with the same services
(devices/ingest/wsgi.py)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from devices.ingest import pushed, service


def _response(answer: service.Answer) -> HttpResponse:
    response = (
        HttpResponse(status=204)
        if answer.status == 204
        else JsonResponse(answer.body, status=answer.status)
    )
    for name, value in answer.headers.items():
        response[name] = value
    return response


def _too_large(request: HttpRequest, limit: int) -> bool:
    length = request.META.get("CONTENT_LENGTH") or ""
    return length.isdigit() and int(length) > limit


@csrf_exempt
@require_POST
def ingest(request: HttpRequest) -> HttpResponse:
    limit = settings.INGEST_MAX_BODY_BYTES
    if _too_large(request, limit):
        return _response(service.too_large())
    answer = service.ingest(
        request.read(limit + 1),
        header=lambda name: str(request.headers.get(name, "")),
        precision=request.GET.get("precision", "ns"),
    )
    return _response(answer)


@csrf_exempt
@require_POST
def influx_write(request: HttpRequest) -> HttpResponse:
    """A customer's InfluxDB pushing its writes (a subscription): devices/ingest/pushed.py."""
    limit = settings.PUSH_MAX_BODY_BYTES
    if _too_large(request, limit):
        return _response(service.too_large(limit))
    answer = pushed.accept(
        request.read(limit + 1),
        authorization=str(request.headers.get("Authorization", "")),
        database=request.GET.get("db", ""),
        precision=request.GET.get("precision", "ns"),
        password=request.GET.get("p", ""),
    )
    return _response(answer)
