"""Production settings: ``manage.py check --deploy`` is clean with the production variables of
README "Running in production", and a TLS proxy's header makes requests https."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from growalert.settings import _proxy_ssl_header
from shared.links import absolute_url
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
SITE = "https://alerts.example.com"


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of README's production example (secrets generated here)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GROWALERT_S"))}
    return {
        **base,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "alerts.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": SITE,
        "GROWALERT_SITE_URL": SITE,
        "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "DJANGO_SECURE_HSTS_PRELOAD": "true",
        **overrides,
    }


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_production_environment():
    result = check_deploy(production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_flags_an_http_site_url():
    """Links in emails would be http: growalert's own deploy check says so."""
    result = check_deploy(production_env(GROWALERT_SITE_URL="http://alerts.example.com"))

    assert result.returncode != 0
    assert "growalert.W001" in result.stderr + result.stdout


def test_check_deploy_flags_what_production_must_not_leave_off():
    result = check_deploy(
        production_env(DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_SECURE_HSTS_SECONDS="0")
    )

    output = result.stderr + result.stdout
    assert "security.W008" in output
    assert "security.W004" in output


def test_production_refuses_to_start_without_its_secrets():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = check_deploy(env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_the_proxy_header_variable_is_a_header_and_a_value():
    assert _proxy_ssl_header("HTTP_X_FORWARDED_PROTO,https") == ("HTTP_X_FORWARDED_PROTO", "https")
    assert _proxy_ssl_header(" HTTP_X_FORWARDED_PROTO , https ") == (
        "HTTP_X_FORWARDED_PROTO",
        "https",
    )
    assert _proxy_ssl_header("") is None
    for bad in ("X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO", "X_FORWARDED_PROTO,https"):
        with pytest.raises(ImproperlyConfigured):
            _proxy_ssl_header(bad)


@pytest.fixture
def behind_tls_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SITE_URL = SITE
    settings.ALLOWED_HOSTS = ["alerts.example.com", "10.0.0.5"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
def test_behind_the_proxy_https_requests_are_served_with_hsts(behind_tls_proxy):
    client = Client(HTTP_HOST="alerts.example.com")

    plain = client.get("/accounts/login/")
    proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")

    assert plain.status_code == 301
    assert plain["Location"] == "https://alerts.example.com/accounts/login/"
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=3600"


@pytest.mark.django_db
def test_probes_answer_over_plain_http_despite_the_redirect(behind_tls_proxy):
    response = Client(HTTP_HOST="10.0.0.5").get("/healthz")

    assert response.status_code == 200


@pytest.mark.django_db
def test_links_in_emails_use_the_site_url_not_the_request(behind_tls_proxy):
    """The one rule: absolute links are GROWALERT_SITE_URL + path, whatever host or scheme the
    request that caused them came with (here an internal address over plain http)."""
    UserFactory(username="alice")
    client = Client(HTTP_HOST="10.0.0.5")

    response = client.post(
        "/accounts/password_reset/",
        {"email": "alice@example.com"},
        HTTP_X_FORWARDED_PROTO="https",
    )

    assert response.status_code == 302
    (email,) = mail.outbox
    link = next(line for line in email.body.splitlines() if "/accounts/reset/" in line)
    assert link.startswith(f"{SITE}/accounts/reset/")
    assert "10.0.0.5" not in email.body


@pytest.mark.django_db
def test_links_in_notifications_use_the_site_url(settings):
    settings.SITE_URL = SITE + "/"

    assert absolute_url("/") == f"{SITE}/"
    assert absolute_url("/app/channels") == f"{SITE}/app/channels"
    assert absolute_url("app/channels") == f"{SITE}/app/channels"


SMOKE = """
from django.test import Client
client = Client()
for path in ("/accounts/login/", "/register", "/api/docs", "/api/docs?script="):
    response = client.get(path, secure=True)
    assert response.status_code == 200, (path, response.status_code)
    assert "default-src 'self'" in response["Content-Security-Policy"], path
    assert response["Strict-Transport-Security"].startswith("max-age="), path
html = client.get("/api/docs", secure=True).content.decode()
bundle = html.split('src="', 1)[1].split('"', 1)[0]
assert bundle.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.")
print("smoke ok", bundle)
"""


def test_production_mode_serves_pages_and_api_docs_from_collected_static_files(tmp_path):
    """DEBUG off names static files through collectstatic's manifest: after collectstatic in
    production mode (as the Dockerfile runs it) pages and Swagger UI's hashed files are served."""
    env = production_env(
        DJANGO_STATIC_ROOT=str(tmp_path / "static"), DJANGO_ALLOWED_HOSTS="testserver"
    )
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()

    smoke = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SMOKE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "smoke ok" in smoke.stdout
