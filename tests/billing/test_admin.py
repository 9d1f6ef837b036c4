from __future__ import annotations

import pytest

from devices.models import Device


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model",
    [
        "billing/customer",
        "billing/subscription",
        "billing/deviceorder",
        "devices/device",
        "billing/stripeevent",
    ],
)
def test_staff_see_every_billing_model_in_the_admin(admin_client, model):
    assert admin_client.get(f"/admin/{model}/").status_code == 200
    assert admin_client.get(f"/admin/{model}/?q=x").status_code == 200


@pytest.mark.django_db
def test_orders_and_their_devices_show_in_the_admin(admin_client, api, fake_stripe, signed_up):
    api.post("/charge", {"token": "tok_visa", "quantity": 2}, format="json")
    order = signed_up.device_orders.get()

    page = admin_client.get(f"/admin/billing/deviceorder/{order.pk}/change/")

    assert page.status_code == 200
    assert b"GRO-01 #2" in page.content
    device = Device.objects.first()
    assert device is not None
    assert (
        device.ingest_key_hash.encode()
        not in admin_client.get(f"/admin/devices/device/{device.pk}/change/").content
    )
