"""WSGI entry point (gunicorn growalert.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "growalert.settings")

application = get_wsgi_application()
