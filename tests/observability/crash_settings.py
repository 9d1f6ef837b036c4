"""The project's settings with one more URL, /test-crash, whose view fails unexpectedly (what
a bug in a view does): the error reporting tests need an unhandled exception in a real web
process."""

from growalert.settings import *  # noqa: F403

ROOT_URLCONF = "tests.observability.crash_urls"
