"""WSGI entry point (gunicorn growalert.wsgi). ``POST /ingest`` is answered in front of Django's
middleware (devices/ingest/wsgi.py); every other request goes to Django."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")

django_application = get_wsgi_application()

from devices.ingest.wsgi import with_ingest  # noqa: E402  (needs Django set up)

application = with_ingest(django_application)
