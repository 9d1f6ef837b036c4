"""POST /ingest over real HTTP through ``growalert.wsgi.application`` (the WSGI fast path in
front of Django that the web server serves), on a loopback server."""

from __future__ import annotations

import httpx
import pytest

from devices import services
from tests.devices.ingest_helpers import flush, pending_batches, rows


@pytest.mark.django_db(transaction=True)
def test_the_fast_path_accepts_refuses_and_leaves_other_paths_to_django(
    server, django_user_model, settings
):
    settings.INGEST_MAX_BODY_BYTES = 2000
    owner = django_user_model.objects.create_user("grower", "g@example.com", "pw-long-enough")
    _, key = services.device_add(owner=owner, name="d")
    url = f"{server}/ingest"

    accepted = httpx.post(
        f"{url}?precision=ms",
        content=b"gro01,bench=b2 temperature=19.5\ngro01,bench=b2 humidity=61",
        headers={"X-API-Key": key, "Content-Type": "text/plain"},
    )
    assert accepted.status_code == 202
    assert accepted.json() == {"accepted": 2, "rejected": 0}

    bad_key = httpx.post(url, json={"event_type": "gro01", "data": {"t": 1}})
    assert bad_key.status_code == 401
    assert bad_key.headers["content-type"] == "application/json"
    too_big = httpx.post(url, content=b"x" * 3000, headers={"X-API-Key": key})
    assert too_big.status_code == 413
    assert httpx.get(url).status_code == 405
    assert httpx.get(url).headers["Allow"] == "POST"
    assert httpx.get(f"{server}/healthz").status_code == 200  # Django still answers the rest

    assert pending_batches() == 1
    flush()
    found = rows(owner.pk)
    assert {(r["bench"], r["temperature"], r["humidity"]) for r in found} == {
        ("b2", 19.5, None),
        ("b2", None, 61.0),
    }
