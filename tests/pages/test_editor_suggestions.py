"""The editor offers what the source holds: measurements, fields and tag values
(GET /sources/<id>/schema), at desktop and phone widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from tests.factories import SourceFactory
from tests.pages.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def soil_data(influx_db) -> None:
    for device in ("bench-1", "bench-3"):
        influx_db.write("soil", "moisture", [(60, 30.0)], {"device": device})
        influx_db.write("soil", "temp", [(60, 21.0)], {"device": device})
    influx_db.write("air", "humidity", [(60, 60.0)], {"device": "bench-1"})


def test_the_schema_lists_measurements_then_a_measurements_fields_and_tags(alice, influx_db):
    soil_data(influx_db)
    source = SourceFactory(owner=alice, database=influx_db.database)
    client = api_as(alice)

    top = client.get(f"/sources/{source.pk}/schema").json()
    soil = client.get(f"/sources/{source.pk}/schema", {"measurement": "soil"}).json()

    assert top == {"measurements": ["air", "soil"], "fields": [], "tags": {}}
    assert soil["fields"] == ["moisture", "temp"]
    assert soil["tags"] == {"device": ["bench-1", "bench-3"]}


def test_another_customers_source_has_no_schema(alice, bob):
    source = SourceFactory(owner=bob)
    assert api_as(alice).get(f"/sources/{source.pk}/schema").status_code == 404


@pytest.mark.parametrize("width", [1100, 390])
def test_the_editor_suggests_what_the_source_holds(
    browser, live_server, alice, influx_db, width, screenshot
):
    soil_data(influx_db)
    source = SourceFactory(owner=alice, name="bench influx", database=influx_db.database)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, is_mobile=width < 500
    )
    page = context.new_page()
    sign_in(page, "alice")
    page.goto("/app/monitors/new")
    page.get_by_label("Source").select_option(str(source.pk))
    expect(page.locator('#measurement-suggestions option[value="soil"]')).to_have_count(1)
    page.get_by_label("Measurement").fill("soil")
    expect(page.locator('#field-suggestions option[value="moisture"]')).to_have_count(1)
    expect(page.locator('#tag-suggestions option[value="device=bench-3"]')).to_have_count(1)

    page.get_by_label("Field").fill("moisure")
    page.get_by_label("Critical threshold").fill("20")
    expect(page.locator("#preview-summary")).to_contain_text(
        "no field `moisure` in `soil`; fields: moisture, temp"
    )
    screenshot(page, f"{width}-no-such-field")
    context.close()
