"""Routes of the monitors API, at the documented paths (``/monitors``, ``/monitors/<id>``)."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from monitors import api
from monitors.notify import api as channels_api

router = SimpleRouter(trailing_slash=False)
router.register("monitors", api.MonitorViewSet, basename="monitor")
router.register("sources", api.SourceViewSet, basename="source")
router.register("channels", channels_api.ChannelViewSet, basename="channel")
router.register("incidents", api.IncidentViewSet, basename="incident")
router.register("silences", api.SilenceViewSet, basename="silence")
router.register("escalation-policies", api.EscalationPolicyViewSet, basename="escalation-policy")

urlpatterns: list[URLPattern | URLResolver] = [
    *router.urls,
    path("charts/<str:token>.png", channels_api.notification_chart, name="notification-chart"),
    path("webhooks/twilio/sms", channels_api.twilio_inbound, name="twilio-inbound-sms"),
    path(
        "webhooks/twilio/voice/<str:token>",
        channels_api.twilio_voice_gather,
        name="twilio-voice-gather",
    ),
]
