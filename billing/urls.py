"""Routes of the documented customer API (``/config``, ``/create-customer``...)."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
