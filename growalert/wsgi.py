"""WSGI entry point (``python -m growalert.serve``: granian). Each of the web server's workers
imports it after the fork, which is where tracing is set up: before the application is built, so
the Django instrumentation's middleware is in it. ``POST /ingest`` is answered in front of
Django's middleware (devices/ingest/wsgi.py), and so is a live page's poll while nothing changed
(growalert/pages/live_wsgi.py); every other request goes to Django."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from observability import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")

if tracing.enabled():  # OTEL_EXPORTER_OTLP_ENDPOINT set
    tracing.init(
        service=f"{settings.TRACING_SERVICE_NAME}-web",
        ratio=settings.TRACING_SAMPLE_RATIO,
        web=True,
    )

django_application = get_wsgi_application()

from devices.ingest.wsgi import with_ingest  # noqa: E402  (needs Django set up)
from growalert.pages.live_wsgi import with_live  # noqa: E402

# Tracing on: each request sampled or not before Django (observability/unsampled.py).
application = with_live(with_ingest(tracing.around_django(django_application)))
