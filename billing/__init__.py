"""Billing with Stripe: customers, subscriptions, device orders and webhooks."""
