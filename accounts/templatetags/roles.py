"""What the acting member's role lets them use, for the pages (``accounts.permissions``, the
table the middleware enforces): ``{% if acting|may:"pages:monitor-delete" %}`` around a form,
``{% if acting|may_open:"pages:monitor-new" %}`` around a link. A page shows only what its
reader can use; the middleware still refuses the rest (a stale page, a hand-made request)."""

from __future__ import annotations

from django import template

from accounts import permissions
from shared.auth import Acting

register = template.Library()


def _allowed(acting: object, url_name: str, method: str) -> bool:
    if not isinstance(acting, Acting):
        return True  # no membership resolved: the middleware does not restrict it either
    return permissions.may(acting.role, url_name, method)


@register.filter
def may(acting: object, url_name: str) -> bool:
    """Whether the member may write (POST) through ``url_name``."""
    return _allowed(acting, url_name, "POST")


@register.filter
def may_open(acting: object, url_name: str) -> bool:
    """Whether the member may open (GET) ``url_name``."""
    return _allowed(acting, url_name, "GET")
