"""Billing's own errors, with the HTTP status the API answers them with."""

from __future__ import annotations


class BillingError(Exception):
    """A request billing refuses; ``message`` is shown to the user."""

    status_code = 400

    def __init__(self, message: str, *, code: str = "invalid", status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        if status_code is not None:
            self.status_code = status_code


class NoCustomer(BillingError):
    status_code = 401

    def __init__(self) -> None:
        super().__init__(
            "No billing customer: create one first with POST /create-customer.",
            code="no_customer",
        )
