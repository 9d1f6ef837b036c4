"""Limit/offset pagination for reads that count their own total in the same statement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

T = TypeVar("T")


class CountedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset pagination (same parameters, links and answer), plus
    ``paginate_counted`` for a read that returns its page and the total together, so the page
    costs one query instead of a COUNT and a SELECT. ``paginate_queryset`` works as before."""

    def paginate_counted(
        self, request: Request, read: Callable[[int | None, int], tuple[int, Sequence[T]]]
    ) -> Sequence[T]:
        """``read(limit, offset)`` returns ``(total, page)``; ``limit`` is None for all rows
        when pagination is off (no ``PAGE_SIZE`` and no ``limit`` parameter)."""
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request) if self.limit is not None else 0
        self.count, page = read(self.limit, self.offset)
        if self.limit is not None and self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        return page
