"""The Content-Security-Policy header, and templates that need nothing inline (the browser
tests in tests/pages/test_csp_browser.py prove that pages pass it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def policy(response) -> dict[str, list[str]]:
    directives = [d.strip().split() for d in response["Content-Security-Policy"].split(";")]
    return {d[0]: d[1:] for d in directives if d}


@pytest.mark.django_db
def test_every_page_gets_the_strict_policy(client):
    csp = policy(client.get("/accounts/login/"))

    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    for directive in ("script-src", "style-src"):
        # A nonce only when the page used one; never 'unsafe-inline', never another host.
        assert csp[directive] == ["'self'"], csp[directive]
    assert "frame-src" not in csp  # default-src 'self'


@pytest.mark.django_db
def test_only_the_stripe_pages_allow_stripe(client, django_user_model, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_csp"  # without Stripe, /register loads no Stripe.js
    register = policy(client.get("/register"))
    client.force_login(django_user_model.objects.create_user("dora", "dora@example.com", "x"))
    account = policy(client.get("/app/account"))
    dashboard = policy(client.get("/app/"))

    for csp in (register, account):
        assert "https://js.stripe.com" in csp["script-src"]
        assert "https://js.stripe.com" in csp["frame-src"]
        assert "https://api.stripe.com" in csp["connect-src"]
    assert "https://billing.stripe.com" in account["form-action"]
    assert all("stripe" not in v for values in dashboard.values() for v in values)


@pytest.mark.django_db
def test_only_the_browsable_api_allows_style_attributes(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("erin", "erin@example.com", "x"))

    browsable = policy(client.get("/monitors", HTTP_ACCEPT="text/html"))
    as_json = client.get("/monitors", HTTP_ACCEPT="application/json")
    page = policy(client.get("/app/"))

    assert browsable["style-src-attr"] == ["'unsafe-inline'"]
    assert browsable["style-src"] == ["'self'"] or browsable["style-src"][1].startswith("'nonce-")
    assert "style-src-attr" not in policy(as_json)
    assert "style-src-attr" not in page


@pytest.mark.django_db
def test_api_docs_serve_swagger_ui_from_the_app(client):
    html = client.get("/api/docs").content.decode()
    script = client.get("/api/docs?script=")

    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "<script>" not in html
    assert "<style>" not in html
    assert "//cdn" not in html
    assert "unpkg" not in html
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*\bnonce=)[^>]*>"), "inline <script> without nonce"),
    (re.compile(r"<style(?![^>]*\bnonce=)[^>]*>"), "<style> without nonce"),
    (re.compile(r"\son[a-z]+\s*="), "inline event handler"),
    (re.compile(r"\sstyle\s*="), "style attribute"),
    (re.compile(r"javascript:"), "javascript: URL"),
]


def test_templates_hold_nothing_the_policy_blocks():
    problems = [
        f"{path.relative_to(ROOT)}: {what}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for pattern, what in INLINE
        if pattern.search(path.read_text())
    ]

    assert problems == []
