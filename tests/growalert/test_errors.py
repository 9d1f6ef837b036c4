"""Every API answer is JSON with the right status; pages show friendly errors.

Each test is one input that answered 500 (or an HTML page) on the API before shared/errors.py,
the bounded pagination and the serializers' checks."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework import throttling
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.services import api_token_create
from billing.gating import comp
from monitors import selectors
from monitors.models import Monitor, Silence, Source
from shared.errors import SERVER_ERROR_DETAIL, api_exception_handler, is_api_path
from shared.parsers import (
    MAX_JSON_DEPTH,
    BoundedJSONParser,
    PayloadTooLarge,
    json_depth_exceeds,
)
from tests.factories import MonitorFactory, SourceFactory, UserFactory

SIX_MB = 6 * 1024 * 1024


@pytest.fixture
def carol(db: None):
    user = UserFactory(username="carol")
    comp(user)
    return user


@pytest.fixture
def api(carol) -> Client:
    """A plain Django client with carol's token: the whole middleware stack, raw bodies."""
    _, token = api_token_create(owner=carol, name="test")
    return Client(HTTP_AUTHORIZATION=f"Token {token}", raise_request_exception=False)


def body(response: Any) -> Any:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return json.loads(response.content)


def post_json(client: Client, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


# --- the inputs observed answering 500 --------------------------------------------------------


def test_a_second_source_with_a_name_the_owner_uses_is_a_400_naming_name(api, carol):
    SourceFactory(owner=carol, name="greenhouse")
    response = post_json(
        api, "/sources", {"name": "greenhouse", "url": "http://127.0.0.1:9", "database": "d"}
    )
    assert response.status_code == 400
    assert "already have a source named" in body(response)["name"][0]
    assert Source.objects.filter(owner=carol).count() == 1


def test_another_customer_may_use_the_same_source_name(api, carol):
    SourceFactory(owner=UserFactory(username="dave"), name="greenhouse")
    response = post_json(
        api, "/sources", {"name": "greenhouse", "url": "http://127.0.0.1:9", "database": "d"}
    )
    assert response.status_code == 201, response.content


def test_renaming_a_source_to_its_own_name_is_allowed(api, carol):
    source = SourceFactory(owner=carol, name="greenhouse")
    response = api.patch(
        f"/sources/{source.pk}", json.dumps({"name": "greenhouse"}), "application/json"
    )
    assert response.status_code == 200, response.content


def test_a_silence_ending_in_the_past_is_a_400_naming_ends_at(api, carol):
    ends_at = (timezone.now() - timedelta(hours=1)).isoformat()
    response = post_json(api, "/silences", {"ends_at": ends_at})
    assert response.status_code == 400
    assert "future" in body(response)["ends_at"][0]
    assert not Silence.objects.filter(owner=carol).exists()


def test_a_tag_name_with_a_nul_is_a_400_naming_tags(api, carol):
    source = SourceFactory(owner=carol)
    payload = {
        "name": "m", "source": source.pk, "measurement": "gro01", "field": "t",
        "tags": {"a\u0000b": "x"}, "critical": 1, "window": "60", "interval": "60",
    }  # fmt: skip
    response = post_json(api, "/monitors", payload)
    assert response.status_code == 400
    assert "NUL" in body(response)["tags"][0]
    assert not Monitor.objects.filter(owner=carol).exists()


def test_a_body_of_100000_nested_arrays_is_a_400(api):
    response = api.post("/monitors", "[" * 100_000 + "]" * 100_000, "application/json")
    assert response.status_code == 400
    assert "nested more than 64 levels" in body(response)["detail"]


def test_json_nested_just_past_the_bound_is_a_400_and_at_the_bound_is_parsed(api):
    too_deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    response = api.post("/silences", too_deep, "application/json")
    assert response.status_code == 400
    assert "nested" in body(response)["detail"]
    at_bound = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    response = api.post("/silences", at_bound, "application/json")
    assert response.status_code == 400
    assert "nested" not in json.dumps(body(response))  # parsed, then refused as a list


def test_json_depth_counts_objects_and_arrays():
    assert not json_depth_exceeds({"a": [1, {"b": 2}]}, 3)
    assert json_depth_exceeds({"a": [1, {"b": []}]}, 3)
    assert not json_depth_exceeds("scalar", 0)


def test_a_huge_limit_is_clamped_to_1000(api, carol):
    MonitorFactory(owner=carol)
    response = api.get("/monitors?limit=287173031118659223552")
    assert response.status_code == 200
    assert body(response)["count"] == 1
    response = api.get("/sources?limit=99999999999")
    assert response.status_code == 200
    assert "limit=1000" in (body(response)["next"] or "limit=1000")


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("offset=287173031118659223552", "offset"),
        ("offset=1000000001", "offset"),
    ],
)
@pytest.mark.parametrize("path", ["/monitors", "/sources", "/incidents"])
def test_a_malformed_or_huge_page_parameter_is_a_400_naming_it(api, path, query, param):
    response = api.get(f"{path}?{query}")
    assert response.status_code == 400
    assert "whole number" in body(response)[param][0]


def test_a_nul_in_the_invoice_preview_subscription_is_a_400_naming_it(api):
    response = api.get("/invoice-preview?subscription=%00")
    assert response.status_code == 400
    assert "subscription" in body(response)


def test_a_nul_in_any_api_query_parameter_is_a_400(api):
    response = api.get("/monitors?status=%00")
    assert response.status_code == 400
    assert "NUL" in body(response)["status"][0]


# --- JSON 404/405/413/415/400 on the API -------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/monitors/abc",
        "/monitors/1/nothing",
        "/sources/abc",
        "/channels/-1",
        "/subscriptions/x",
        "/api/nothing",
        "/devices/abc/ingest-key",
        "/monitors/99999999",
        "/monitors/%00",
    ],
)
def test_a_bad_id_or_unknown_url_under_the_api_is_a_json_404(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert body(response) == {"detail": "Not found."}


def test_an_unknown_url_anywhere_is_a_json_404_for_a_json_client(api):
    response = api.get("/no/such/page", HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert body(response)["detail"] == "Not found."


def test_a_6_mb_body_is_a_json_413_on_drf_views_and_plain_views(api):
    for path in ("/monitors", "/webhook", "/create-customer"):
        response = api.post(path, b"x" * SIX_MB, "application/json")
        assert response.status_code == 413, path
        assert "larger than the limit" in body(response)["detail"]


def test_the_json_parser_reads_no_more_than_the_upload_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = io.BytesIO(json.dumps({"reason": "x" * 2000}).encode())
    with pytest.raises(PayloadTooLarge):
        BoundedJSONParser().parse(stream, "application/json", {})
    assert stream.tell() == 1001


def test_an_unsupported_media_type_is_a_json_415(api):
    response = api.post("/monitors", "name=x", "text/plain")
    assert response.status_code == 415
    assert "Unsupported media type" in body(response)["detail"]


def test_a_wrong_method_is_a_json_405_with_allow(api):
    response = api.delete("/config")
    assert response.status_code == 405
    assert "DELETE" in body(response)["error"]["message"]
    response = api.get("/webhook")
    assert response.status_code == 405
    assert body(response) == {"detail": 'Method "GET" not allowed.'}
    assert response["Allow"] == "POST"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_malformed_json_is_a_json_400(api):
    response = api.post("/silences", '{"ends_at": ', "application/json")
    assert response.status_code == 400
    assert "JSON parse error" in body(response)["detail"]


def test_a_disallowed_host_is_a_json_400_on_the_api(api):
    response = api.get("/monitors", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert "Host" in body(response)["detail"]


def test_an_unhandled_error_is_a_json_500_without_traceback_or_secrets(api, monkeypatch, settings):
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("password=hunter2 in a traceback")

    monkeypatch.setattr(selectors, "source_list", broken)
    for debug in (False, True):
        settings.DEBUG = debug
        response = api.get("/sources")
        assert response.status_code == 500
        assert body(response) == {"detail": SERVER_ERROR_DETAIL}
        assert b"hunter2" not in response.content
        assert b"Traceback" not in response.content


def test_a_throttled_request_is_a_429_with_retry_after_in_whole_seconds(carol):
    class OneAMinute(throttling.SimpleRateThrottle):
        rate = "1/min"

        def get_cache_key(self, request: Request, view: Any) -> str:
            return f"test-errors-throttle-{carol.pk}"

    class Throttled1(APIView):
        permission_classes = [AllowAny]
        throttle_classes = [OneAMinute]

        def get(self, request: Request) -> Response:
            return Response({"ok": True})

    from django.core.cache import cache

    cache.delete(f"test-errors-throttle-{carol.pk}")
    view = Throttled1.as_view()
    factory = APIRequestFactory()
    assert view(factory.get("/api/x")).status_code == 200
    response = view(factory.get("/api/x"))
    response.render()
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "throttled" in json.loads(response.content)["detail"]
    cache.delete(f"test-errors-throttle-{carol.pk}")


def test_retry_after_rounds_a_fractional_wait_up():
    response = api_exception_handler(Throttled(wait=0.2), {})
    assert response is not None
    assert response.status_code == 429
    assert response["Retry-After"] == "1"


def test_api_paths_are_decided_by_their_first_segment():
    assert is_api_path("/monitors")
    assert is_api_path("/monitors/1/test")
    assert is_api_path("/invoice-preview")
    assert is_api_path("/api/schema")
    assert not is_api_path("/monitorsx")
    assert not is_api_path("/app/monitors/1")
    assert not is_api_path("/accounts/login/")


# --- pages ----------------------------------------------------------------------------------


@pytest.fixture
def browser(carol) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(carol)
    return client


def test_an_unknown_page_is_the_friendly_html_404(browser):
    for path in ("/app/monitors/99999999", "/app/nothing", "/nothing"):
        response = browser.get(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert b"Page not found" in response.content


def test_a_page_error_is_the_friendly_html_500(browser, monkeypatch):
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(selectors, "source_list", broken)
    response = browser.get("/app/sources")
    assert response.status_code == 500
    assert b"Something went wrong" in response.content
    assert b"hunter2" not in response.content


def test_a_6_mb_form_is_the_friendly_413_page(browser):
    response = browser.post("/app/sources", {"name": "x" * SIX_MB})
    assert response.status_code == 413
    assert b"Too much data" in response.content


def test_a_duplicate_source_name_on_the_page_is_a_form_error(browser, carol):
    SourceFactory(owner=carol, name="greenhouse")
    response = browser.post(
        "/app/sources",
        {
            "name": "greenhouse",
            "url": "http://127.0.0.1:9",
            "database": "d",
            "flavor": "influxql",
            "auth_scheme": "none",
        },
    )
    assert response.status_code == 400
    assert "already have a source named" in response.content.decode()
    assert Source.objects.filter(owner=carol).count() == 1


def test_a_nul_in_a_tag_on_the_monitor_page_is_a_form_error(browser, carol):
    source = SourceFactory(owner=carol)
    response = browser.post(
        "/app/monitors/new",
        {
            "name": "m",
            "source": source.pk,
            "measurement": "gro01",
            "field": "t",
            "tags": "a\u0000b=x",
            "aggregation": "mean",
            "window": "5m",
            "comparator": "above",
            "critical": "1",
            "interval": "1m",
            "pending_for": "1",
            "recover_after": "1",
            "no_data_policy": "keep_last",
            "error_policy": "keep_last",
            "enabled": "on",
        },
    )
    assert response.status_code == 400
    assert "cannot contain nul characters" in response.content.decode().lower()
    assert not Monitor.objects.filter(owner=carol).exists()


def test_a_disallowed_host_on_a_page_is_the_friendly_400_page(browser):
    response = browser.get("/app/", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert b"Bad request" in response.content
    assert b"evil.example.com" not in response.content


def test_the_schema_documents_every_operations_error_answers(api):
    schema = json.loads(api.get("/api/schema?format=json").content)
    assert "Error" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"400", "401", "403", "404", "413", "415", "429"} <= codes, (method, path)
            assert ("402" in codes) == path.startswith(("/monitors", "/charge", "/create-sub"))


def test_too_many_query_parameters_are_a_json_400(api, settings):
    for debug in (False, True):
        settings.DEBUG = debug
        response = api.get("/monitors?" + "&".join(f"p{i}=1" for i in range(1001)))
        assert response.status_code == 400
        assert body(response)["detail"] == "The request was refused as malformed."


def test_an_unhandled_api_error_still_reaches_error_reporters(carol, monkeypatch):
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "source_list", broken)
    client = Client()  # re-raises what got_request_exception reports
    client.force_login(carol)
    with pytest.raises(RuntimeError, match="boom"):
        client.get("/sources")


@pytest.mark.parametrize("urlconf", ["monitors.urls", "billing.urls", "accounts.urls"])
def test_every_api_route_answers_json_errors(urlconf: str) -> None:
    """A new API route whose first path segment the error handling does not know would answer
    HTML errors: every route of the API's URL modules is under an API prefix."""
    from importlib import import_module

    from django.urls import URLPattern, URLResolver

    from shared.errors import API_PREFIXES

    def first_segments(patterns: list[URLPattern | URLResolver], prefix: str = "") -> set[str]:
        found: set[str] = set()
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                found |= first_segments(pattern.url_patterns, route)
            else:
                found.add(route.split("/")[0].split("\\")[0].split("(")[0].rstrip("$"))
        return found

    segments = first_segments(import_module(urlconf).urlpatterns) - {""}
    assert segments
    assert segments <= set(API_PREFIXES)
