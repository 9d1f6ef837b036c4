"""Routes of devices, at the site root: the customer API's device endpoints, /ingest and
/influx/write (a customer's InfluxDB pushing its writes)."""

from django.urls import URLPattern, URLResolver, path

from devices import api, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("ingest", views.ingest, name="ingest"),
    path("influx/write", views.influx_write, name="influx-write"),
    path("devices", api.DeviceListView.as_view(), name="billing-devices"),
    path(
        "devices/<int:device_id>/ingest-key",
        api.DeviceIngestKeyView.as_view(),
        name="billing-device-ingest-key",
    ),
]
