"""Which stored Stripe webhook events may go (monitors/retention.py runs the rules).

An event is kept while its id still de-duplicates a delivery Stripe may retry (Stripe retries a
webhook for up to 3 days; ``RETENTION_STRIPE_EVENTS_DAYS`` is at least 7) and while it failed:
a failed event is retried when Stripe sends it again, and an operator reads its error.
"""

from __future__ import annotations

from shared.pruning import Rule

STRIPE_EVENTS = Rule(
    name="stripe_events",
    table="billing_stripeevent",
    where="t.status IN ('processed', 'ignored') AND t.received_at < %(cutoff)s",
    order_by="id",  # ids grow with received_at: the oldest rows come first
)
