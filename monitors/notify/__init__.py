"""Notification channels: one module per kind, delivery of the outbox, the channels API."""
