"""Limit/offset pagination for reads that count their own total in the same statement."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from django.http import HttpResponse
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

T = TypeVar("T")


class CountedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pagination (same parameters, links and answer), plus
    ``paginate_counted`` for a read that returns its page and the total together, so the page
    costs one query instead of a COUNT and a SELECT. ``paginate_queryset`` works as before."""

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
