"""The API's JSON parser: DRF's, bounded in size and nesting depth.

``BoundedJSONParser`` reads at most ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (413 beyond) and refuses
JSON nested deeper than ``MAX_JSON_DEPTH`` (400), so a hostile body can exhaust neither memory
nor the interpreter's recursion limit. (Its own module: DRF imports the parser classes while
``rest_framework.views`` loads, so this module must not import that one.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

MAX_JSON_DEPTH = 64


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than the limit of {limit} bytes.")


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with a size and a nesting bound (see the module docstring)."""

    max_depth = MAX_JSON_DEPTH

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge()
        try:
            text = raw.decode((parser_context or {}).get("encoding", settings.DEFAULT_CHARSET))
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError("The request body is not valid UTF-8 text.") from exc
        constant = strict_constant if self.strict else None
        try:
            data = json.loads(text, parse_constant=constant)
        except RecursionError as exc:
            raise exceptions.ParseError(self._too_deep_message()) from exc
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
        if json_depth_exceeds(data, self.max_depth):
            raise exceptions.ParseError(self._too_deep_message())
        return data

    def _too_deep_message(self) -> str:
        return f"The JSON body is nested more than {self.max_depth} levels deep."


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
