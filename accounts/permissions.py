"""What each role may do: the ONE table, by URL name, for the API and the pages.

A request reads (GET, HEAD, OPTIONS) or writes (everything else); each URL name states the
least role that may read it and the least that may write through it. ``accounts.tenancy``'s
middleware enforces it on every request with a signed-in member (session or API token), before
the view runs. URL names in ``PUBLIC`` need no account (the view decides who may use it). A URL
name in neither is refused to all but the owner, and ``tests/accounts/test_permission_matrix.py``
fails until it is declared here.

Roles: viewer reads everything; member also writes monitors, channels, silences, acknowledges
incidents, tests, and keeps its own API tokens; admin also sources, devices, escalation
policies, the team and the account; owner also billing.
"""

from __future__ import annotations

from typing import NamedTuple

from accounts.models import RANK, Role

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Rule(NamedTuple):
    read: Role
    write: Role


VIEWER, MEMBER, ADMIN, OWNER = Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER

# No account needed: probes, metrics, schema, ingest (device keys), pushed writes (source push
# keys), signed links, webhooks
# (signatures), sign-in and sign-up, and each person's own password pages.
PUBLIC = frozenset(
    {
        "healthz",
        "readyz",
        "health-deps",
        "metrics",
        "status",
        "api-schema",
        "api-docs",
        "ingest",
        "influx-write",  # a source's push key
        "notification-chart",
        "twilio-inbound-sms",
        "twilio-voice-gather",
        "billing-config",
        "billing-webhook",
        "login",
        "logout",
        "password_change",
        "password_change_done",
        "password_reset",
        "password_reset_done",
        "password_reset_confirm",
        "password_reset_complete",
        "pages:home",
        "pages:register",
        "pages:acknowledge",
        "pages:invitation",
        "pages:account-switch",  # the view checks the membership it switches to
    }
)

POLICY: dict[str, Rule] = {
    # --- API: monitors, incidents, silences (member writes) --------------------------------
    "monitor-list": Rule(VIEWER, MEMBER),
    "monitor-preview": Rule(VIEWER, MEMBER),
    "monitor-detail": Rule(VIEWER, MEMBER),
    "monitor-incidents": Rule(VIEWER, MEMBER),
    "monitor-series": Rule(VIEWER, MEMBER),
    "monitor-test": Rule(VIEWER, MEMBER),
    "incident-list": Rule(VIEWER, MEMBER),
    "incident-detail": Rule(VIEWER, MEMBER),
    "incident-acknowledge": Rule(VIEWER, MEMBER),
    "incident-timeline": Rule(VIEWER, MEMBER),
    "silence-list": Rule(VIEWER, MEMBER),
    "silence-detail": Rule(VIEWER, MEMBER),
    "channel-list": Rule(VIEWER, MEMBER),
    "channel-detail": Rule(VIEWER, MEMBER),
    "channel-dead-letters": Rule(VIEWER, MEMBER),
    "channel-deliveries": Rule(VIEWER, MEMBER),
    "channel-retry-dead-letters": Rule(VIEWER, MEMBER),
    "channel-send-verification": Rule(VIEWER, MEMBER),
    "channel-test": Rule(VIEWER, MEMBER),
    "channel-verify": Rule(VIEWER, MEMBER),
    # --- API: sources, escalation policies, devices (admin writes) -------------------------
    "source-list": Rule(VIEWER, ADMIN),
    "source-detail": Rule(VIEWER, ADMIN),
    "source-check": Rule(VIEWER, ADMIN),
    "source-contents": Rule(VIEWER, ADMIN),
    "source-push": Rule(ADMIN, ADMIN),
    "escalation-policy-list": Rule(VIEWER, ADMIN),
    "escalation-policy-detail": Rule(VIEWER, ADMIN),
    "billing-devices": Rule(VIEWER, ADMIN),
    "billing-device-ingest-key": Rule(VIEWER, ADMIN),
    # --- API: billing (owner only, reads included) -----------------------------------------
    "billing-create-customer": Rule(OWNER, OWNER),
    "billing-create-subscription": Rule(OWNER, OWNER),
    "billing-charge": Rule(OWNER, OWNER),
    "billing-customer": Rule(OWNER, OWNER),
    "billing-customer-id": Rule(OWNER, OWNER),
    "billing-subscriptions": Rule(OWNER, OWNER),
    "billing-subscription-cancel": Rule(OWNER, OWNER),
    "billing-subscription-resume": Rule(OWNER, OWNER),
    "billing-invoice-preview": Rule(OWNER, OWNER),
    "billing-customer-portal": Rule(OWNER, OWNER),
    "billing-device-orders": Rule(OWNER, OWNER),
    # --- API: one's own tokens, the team ---------------------------------------------------
    "api-tokens": Rule(VIEWER, MEMBER),
    "api-token": Rule(VIEWER, MEMBER),
    "account-members": Rule(VIEWER, ADMIN),
    "account-member": Rule(VIEWER, ADMIN),
    "account-invitations": Rule(ADMIN, ADMIN),
    "account-invitation": Rule(ADMIN, ADMIN),
    # --- pages -----------------------------------------------------------------------------
    "pages:dashboard": Rule(VIEWER, VIEWER),
    "pages:live-dashboard": Rule(VIEWER, VIEWER),
    "pages:live-monitor": Rule(VIEWER, VIEWER),
    "pages:live-incident": Rule(VIEWER, VIEWER),
    "pages:monitor-new": Rule(MEMBER, MEMBER),
    "pages:monitor": Rule(VIEWER, MEMBER),
    "pages:monitor-chart": Rule(VIEWER, MEMBER),
    "pages:monitor-edit": Rule(MEMBER, MEMBER),
    "pages:monitor-toggle": Rule(MEMBER, MEMBER),
    "pages:monitor-test": Rule(MEMBER, MEMBER),
    "pages:monitor-delete": Rule(MEMBER, MEMBER),
    "pages:monitor-silence": Rule(MEMBER, MEMBER),
    "pages:series-silence": Rule(MEMBER, MEMBER),
    "pages:series-acknowledge": Rule(MEMBER, MEMBER),
    "pages:silence-end": Rule(MEMBER, MEMBER),
    "pages:incident": Rule(VIEWER, MEMBER),
    "pages:incident-acknowledge": Rule(MEMBER, MEMBER),
    "pages:escalation": Rule(VIEWER, ADMIN),
    "pages:escalation-delete": Rule(ADMIN, ADMIN),
    "pages:sources": Rule(VIEWER, ADMIN),
    "pages:source-check": Rule(ADMIN, ADMIN),
    "pages:source-delete": Rule(ADMIN, ADMIN),
    "pages:source-push": Rule(ADMIN, ADMIN),
    "pages:devices": Rule(VIEWER, ADMIN),
    "pages:device": Rule(VIEWER, ADMIN),
    "pages:device-key": Rule(ADMIN, ADMIN),
    "pages:channels": Rule(VIEWER, MEMBER),
    "pages:channel": Rule(VIEWER, MEMBER),
    "pages:channel-default": Rule(MEMBER, MEMBER),
    "pages:channel-test": Rule(MEMBER, MEMBER),
    "pages:channel-device-health": Rule(MEMBER, MEMBER),
    "pages:channel-send-verification": Rule(MEMBER, MEMBER),
    "pages:channel-verify": Rule(MEMBER, MEMBER),
    "pages:channel-retry": Rule(MEMBER, MEMBER),
    "pages:channel-delete": Rule(MEMBER, MEMBER),
    "pages:account": Rule(VIEWER, VIEWER),
    "pages:profile": Rule(VIEWER, VIEWER),  # one's own time zone
    "pages:subscription-cancel": Rule(OWNER, OWNER),
    "pages:token-create": Rule(MEMBER, MEMBER),
    "pages:token-revoke": Rule(MEMBER, MEMBER),
    "pages:team": Rule(VIEWER, ADMIN),
    "pages:team-invite": Rule(ADMIN, ADMIN),
    "pages:team-invitation-revoke": Rule(ADMIN, ADMIN),
    "pages:team-member-role": Rule(ADMIN, ADMIN),
    "pages:team-member-remove": Rule(ADMIN, ADMIN),
    "pages:team-leave": Rule(VIEWER, VIEWER),
}

UNDECLARED = Rule(OWNER, OWNER)
# The Django admin decides itself (staff only); it is no account's.
STAFF_NAMESPACE = "admin:"


def is_write(method: str) -> bool:
    return method.upper() not in READ_METHODS


def required_role(url_name: str, method: str) -> Role | None:
    """The least role for ``method`` on ``url_name``; None for a public URL."""
    if url_name in PUBLIC or url_name.startswith(STAFF_NAMESPACE):
        return None
    rule = POLICY.get(url_name, UNDECLARED)
    return rule.write if is_write(method) else rule.read


def at_least(role: str, least: Role) -> bool:
    return role in Role.values and RANK[Role(role)] >= RANK[least]


def may(role: str, url_name: str, method: str = "POST") -> bool:
    """Whether ``role`` may ``method`` through ``url_name``: what the middleware enforces, for
    the pages to show only the buttons and forms the member can use."""
    least = required_role(url_name, method)
    return least is None or at_least(role, least)


def refusal(role: str, least: Role, method: str) -> str:
    """The message shown to a member whose role does not allow the request."""
    verb = "change" if is_write(method) else "see"
    allowed = {
        VIEWER: "everyone in the account",
        MEMBER: "members, admins and the owner",
        ADMIN: "admins and the owner",
        OWNER: "the account's owner",
    }[least]
    return f"Your role ({role}) cannot {verb} this: only {allowed} can."
