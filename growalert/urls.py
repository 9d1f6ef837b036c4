"""URL routes. Documented API paths sit at the root (``/monitors``, ``/config``...)."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from growalert.health import views as health
from growalert.metrics import metrics_view

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("health/deps", health.deps, name="health-deps"),
    path("metrics", metrics_view, name="metrics"),
    path("status", health.status, name="status"),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar's files; the split view serves its start-up script
    # as a file (?script) so the page passes the Content-Security-Policy.
    path("api/docs", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include("devices.urls")),
    path("", include("monitors.urls")),
    path("", include("billing.urls")),
    path("", include("accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("growalert.pages.urls")),
]

# JSON on the API's paths, friendly pages elsewhere (shared/errors.py).
handler400 = "shared.errors.bad_request"
handler403 = "shared.errors.permission_denied"
handler404 = "shared.errors.page_not_found"
handler500 = "shared.errors.server_error"
