"""``{% absolute_url path %}``: shared.links.absolute_url in templates (emails)."""

from __future__ import annotations

from django import template

from shared import links

register = template.Library()


@register.simple_tag
def absolute_url(path: str) -> str:
    return links.absolute_url(path)
