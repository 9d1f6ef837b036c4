"""growalert Django project: settings, URLs, the Celery app and health endpoints."""

from growalert.celery import app as celery_app

__all__ = ["celery_app"]
