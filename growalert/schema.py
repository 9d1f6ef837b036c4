"""drf-spectacular postprocessing: the error answers every operation can give, documented.

Views document their success answers; the errors come from one place (shared/errors.py,
DRF's authentication, permissions and throttling, billing's handler), so they are added here
once: each operation lists 400, 401, 403, 404, 405, 406, 413, 415 and 429 with the ``Error``
body (an object: ``{"detail": "..."}``, a field name to its messages for invalid input, or
billing's ``{"error": {"message", "code"}}``), plus 402 where a subscription or a card decides."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        '{"detail": "..."} for most errors; for invalid input, each field\'s name with its '
        'messages; on the billing endpoints {"error": {"message": ..., "code": ...}}.'
    ),
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}

STANDARD_ERRORS = {
    "400": "The request is invalid: a parameter or field is malformed or out of bounds.",
    "401": "Authentication is required (a token or a session).",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such resource (or it belongs to another customer).",
    "405": "This method is not allowed here.",
    "406": "No answer in a media type the Accept header allows.",
    "413": "The request body is larger than the server accepts.",
    "415": "The request body's media type is not supported.",
    "429": "Throttled: retry after the number of seconds in Retry-After.",
}
PAYMENT_REQUIRED = "An active subscription is required, or the card was declined."
# Path prefixes whose operations can answer 402 (HasActiveSubscription, card declines).
PAYMENT_PATHS = ("/monitors", "/charge", "/create-subscription")


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """A SPECTACULAR_SETTINGS ``POSTPROCESSING_HOOKS`` entry."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            codes = dict(STANDARD_ERRORS)
            if path.startswith(PAYMENT_PATHS):
                codes["402"] = PAYMENT_REQUIRED
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": error})
    return result
