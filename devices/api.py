"""The customer API's device endpoints, beside billing's (same authentication and errors:
they are billing's views, answered from devices' rows)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.views import BillingView
from devices import selectors, services
from devices.serializers import DeviceListOutput, DeviceOutput


class DeviceListView(BillingView):
    """GET /devices: the caller's GRO-01 devices (ingest keys shown by prefix only)."""

    needs_stripe = False

    @extend_schema(responses=DeviceListOutput, tags=["billing"])
    def get(self, request: Request) -> Response:
        devices = selectors.device_list(owner=self.customer(request).user)
        return Response({"devices": DeviceOutput(devices, many=True).data})


class DeviceIngestKeyView(BillingView):
    """POST /devices/<id>/ingest-key: a new ingest key, shown this once."""

    needs_stripe = False

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT, tags=["billing"])
    def post(self, request: Request, device_id: int) -> Response:
        owner = self.customer(request).user
        device = get_object_or_404(selectors.device_list(owner=owner), pk=device_id)
        key = services.device_rotate_ingest_key(device=device)
        return Response({"device": DeviceOutput(device).data, "ingestKey": key})
