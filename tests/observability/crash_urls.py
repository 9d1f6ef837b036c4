"""growalert's URLs plus /test-crash (see crash_settings)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def crash(request: HttpRequest) -> HttpResponse:
    # What a library might put in an exception: a Slack webhook URL and a Stripe key.
    raise RuntimeError(
        "upstream refused https://hooks.slack.com/services/T000/B000/slacksecretPLANTED "
        "with key sk_live_stripePLANTED123"
    )


urlpatterns = [
    path("test-crash", crash, name="test-crash"),
    path("", include("growalert.urls")),
]
