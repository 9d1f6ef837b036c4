"""Routes of the monitors API, at the documented paths (``/monitors``, ``/monitors/<id>``)."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
