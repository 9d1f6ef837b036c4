"""Limit/offset pagination with bounded parameters, for every list of the API.

``limit`` must be a whole number from 1; above ``MAX_LIMIT`` (1000) it is clamped to it, as
DRF's ``max_limit`` does. ``offset`` must be a whole number from 0 to ``MAX_OFFSET``. Anything
else answers 400 naming the parameter (DRF alone ignored a malformed value and let a huge one
reach Postgres, which failed with a 500)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpResponse
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

T = TypeVar("T")

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000
_MAX_DIGITS = 20  # longer than any bound: read as "too large" without parsing it


def _whole_number(request: Request, name: str, *, low: int, high: int | None) -> int | None:
    """The parameter as a whole number in [low, high]; above ``high`` when high is None means
    "huge" and comes back as ``sys.maxsize`` for the caller to clamp. None when absent."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        value = -1
    elif len(text) > _MAX_DIGITS:
        value = sys.maxsize
    else:
        value = int(text)
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValidationError({name: [f"must be a whole number {bounds}."]})
    return value


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pagination with the bounds of the module docstring."""

    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int | None:
        limit = _whole_number(request, self.limit_query_param, low=1, high=None)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit) if self.max_limit else limit

    def get_offset(self, request: Request) -> int:
        return _whole_number(request, self.offset_query_param, low=0, high=MAX_OFFSET) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1})
                parameter["description"] += f" At most {MAX_LIMIT} (larger values are clamped)."
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update({"minimum": 0, "maximum": MAX_OFFSET})
        return parameters


class CountedLimitOffsetPagination(BoundedLimitOffsetPagination):
    """The bounded pagination plus ``paginate_counted`` for a read that returns its page and
    the total together, so the page costs one query instead of a COUNT and a SELECT.
    ``paginate_queryset`` works as before."""

    def paginate_counted(
        self, request: Request, read: Callable[[int | None, int], tuple[int, T]]
    ) -> T:
        """``read(limit, offset)`` returns ``(total, page)``; ``limit`` is None for all rows
        when pagination is off (no ``PAGE_SIZE`` and no ``limit`` parameter)."""
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request) if self.limit is not None else 0
        self.count, page = read(self.limit, self.offset)
        if self.limit is not None and self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        return page

    def get_paginated_json_response(self, results: str) -> HttpResponse:
        """``get_paginated_response``'s answer as DRF's JSONRenderer writes it, for a page
        whose ``results`` are already JSON text (a list): the envelope is rendered around it
        instead of parsing and writing the page again."""
        links = {"next": self.get_next_link(), "previous": self.get_previous_link()}
        envelope = json.dumps(
            {"count": self.count, **links}, ensure_ascii=False, separators=(",", ":")
        )
        # JSONRenderer escapes these two (valid JSON, but line breaks to JavaScript) as well.
        results = results.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        body = f'{envelope[:-1]},"results":{results}}}'
        return HttpResponse(body.encode(), content_type="application/json")
