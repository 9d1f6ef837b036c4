"""Operating growalert: structured logs, request/task context, error reports (Sentry) and
traces (OpenTelemetry). Imports only the standard library, Django and third-party packages,
never the apps: the apps may import it, and so may the project's wiring (settings, celery,
wsgi). Each part is off unless its setting is given (LOG_FORMAT=json, SENTRY_DSN,
OTEL_EXPORTER_OTLP_ENDPOINT); docs/operations.md says what each one does."""
