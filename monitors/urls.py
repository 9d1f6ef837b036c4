"""Routes of the monitors API, at the documented paths (``/monitors``, ``/monitors/<id>``)."""

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from monitors.notify import api as channels_api

router = SimpleRouter(trailing_slash=False)
router.register("channels", channels_api.ChannelViewSet, basename="channel")

urlpatterns: list[URLPattern | URLResolver] = router.urls
