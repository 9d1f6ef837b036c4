"""The ceiling for GET /monitors on this stack, for ``bench_api.py --ceiling`` only.

A URLconf (see ``bench/api_ceiling_settings.py``) serving the project's URLs plus
``/bench/ceiling``: a bare Django view that answers the same page of 50 with ONE SQL
statement in which Postgres finds the token's user (by the token's prefix and SHA-256, as the
API does), counts, pages, gathers channel ids and builds the JSON text itself; Python only
hashes the token and wraps the answer. No DRF, no serializer, no model, no subscription check
and no rate limit (so it is an upper bound). Its output is close to, not exactly, the API's
(numbers and durations as Postgres prints them): it exists to be measured, never served.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from accounts import tokens

_PAGE_AS_JSON = """
WITH owner AS (
    SELECT t.owner_id AS id FROM accounts_apitoken t JOIN auth_user u ON u.id = t.owner_id
    WHERE t.prefix = %(prefix)s AND t.token_hash = %(digest)s AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.is_active
), page AS (
    SELECT m.*, count(*) OVER () AS total FROM monitors_monitor m
    WHERE m.owner_id = (SELECT id FROM owner) ORDER BY m.name, m.id LIMIT 50
)
SELECT (SELECT id FROM owner), (SELECT max(total) FROM page), (
    SELECT coalesce(json_agg(json_build_object(
        'id', p.id, 'name', p.name, 'description', p.description, 'source', p.source_id,
        'measurement', p.measurement, 'field', p.field, 'tags', p.tags,
        'aggregation', p.aggregation, 'percentile', p.percentile, 'window', p."window",
        'raw_query', p.raw_query, 'comparator', p.comparator, 'critical', p.critical,
        'critical_high', p.critical_high, 'warning', p.warning, 'warning_high', p.warning_high,
        'recovery', p.recovery, 'interval', p."interval", 'pending_for', p.pending_for,
        'recover_after', p.recover_after, 'repeat_every', p.repeat_every,
        'no_data_policy', p.no_data_policy, 'error_policy', p.error_policy,
        'flap_detection', p.flap_detection,
        'channels', ARRAY(SELECT c.channel_id FROM monitors_monitor_channels c
                          WHERE c.monitor_id = p.id ORDER BY 1),
        'enabled', p.enabled, 'status', p.status, 'status_reason', p.status_reason,
        'status_changed_at', p.status_changed_at, 'last_value', p.last_value,
        'last_evaluated_at', p.last_evaluated_at,
        'next_due_at', (SELECT s.next_due_at FROM monitors_schedule s
                        WHERE s.monitor_id = p.id AND p.enabled),
        'created_at', p.created_at, 'updated_at', p.updated_at
    ) ORDER BY p.name, p.id), '[]')::text FROM page p
)
"""


def ceiling(request: HttpRequest) -> HttpResponse:
    presented = tokens.parse(request.headers.get("Authorization", "").removeprefix("Token "))
    if presented is None:
        return JsonResponse({"detail": "Invalid token."}, status=401)
    with connection.cursor() as cursor:
        cursor.execute(_PAGE_AS_JSON, {"prefix": presented.prefix, "digest": presented.digest})
        owner, total, page = cursor.fetchone()
    if owner is None:
        return JsonResponse({"detail": "Invalid token."}, status=401)
    body = f'{{"count":{total or 0},"next":null,"previous":null,"results":{page}}}'
    return HttpResponse(body, content_type="application/json")


urlpatterns = [path("bench/ceiling", ceiling), path("", include("growalert.urls"))]
